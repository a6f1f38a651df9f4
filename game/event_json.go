package game

import "github.com/tapwars/tapwars/internal/flatjson"

// AppendJSON appends the event's JSON, byte for byte what json.Marshal
// writes for it, without reflection: every tap is encoded once for Kafka
// and once for its answer.
func (e TapEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = flatjson.AppendString(b, e.ID)
	b = append(b, `,"userId":`...)
	b = flatjson.AppendString(b, e.UserID)
	b = append(b, `,"username":`...)
	b = flatjson.AppendString(b, e.Username)
	b = append(b, `,"team":`...)
	b = flatjson.AppendString(b, string(e.Team))
	b = append(b, `,"timestamp":`...)
	b = flatjson.AppendInt(b, e.Timestamp)
	b = append(b, `,"sessionId":`...)
	b = flatjson.AppendString(b, e.SessionID)
	if e.Count != 0 {
		b = append(b, `,"count":`...)
		b = flatjson.AppendInt(b, int64(e.Count))
	}
	if e.Round != 0 {
		b = append(b, `,"round":`...)
		b = flatjson.AppendInt(b, e.Round)
	}
	return append(b, '}')
}

// ReadTapEvent reads an event laid out exactly as AppendJSON writes it
// (a count or round of 0 is left out), with strings that need no
// unescaping; ok is false for anything else, which encoding/json then
// decides. Count is 0 when absent, as AppendJSON takes it.
func ReadTapEvent(b []byte) (e TapEvent, ok bool) {
	r := flatjson.NewReader(b)
	e.ID = r.String("id")
	e.UserID = r.String("userId")
	e.Username = r.String("username")
	e.Team = Team(r.String("team"))
	e.Timestamp = r.Int("timestamp")
	e.SessionID = r.String("sessionId")
	if r.Next("count") {
		if e.Count = int(r.Int("count")); e.Count == 0 {
			return TapEvent{}, false
		}
	}
	if r.Next("round") {
		if e.Round = r.Int("round"); e.Round == 0 {
			return TapEvent{}, false
		}
	}
	if !r.End() {
		return TapEvent{}, false
	}
	return e, true
}
