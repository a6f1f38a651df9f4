package handlers

import (
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
)

// jsonSerializer is Echo's JSON serializer, except that the answer every
// tap gets (tapResponse) is written without reflection, byte for byte as
// encoding/json writes it.
type jsonSerializer struct{ echo.DefaultJSONSerializer }

// answerBufs hold tap answers while they are written.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (j jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	r, ok := i.(tapResponse)
	if !ok || indent != "" {
		return j.DefaultJSONSerializer.Serialize(c, i, indent)
	}
	bp := answerBufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"success":`...)
	b = strconv.AppendBool(b, r.Success)
	b = append(b, `,"tapEvent":`...)
	b = r.TapEvent.AppendJSON(b)
	b = append(b, "}\n"...) // json.Encoder ends each value with a newline
	_, err := c.Response().Write(b)
	*bp = b
	answerBufs.Put(bp)
	return err
}
