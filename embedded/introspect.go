package embedded

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"sort"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// introspect reads a few unexported fields of miniredis (v2.40.0) through
// reflect. Nothing is ever written this way. The fields are looked up once,
// at start, and a miniredis without them makes StartRedis fail with a clear
// error instead of misbehaving.
//
//   - connCtx.nested: the hook runs for the commands a Lua script issues via
//     redis.call, on a throw-away peer; they must not take the global lock
//     again (it is held by the script's own command) and are captured as the
//     script's effects.
//   - connCtx.selectedDB: every logged command records its database.
//   - connCtx.transaction: whether a connection is inside MULTI.
//   - connCtx.subscriber: whether a connection is in pub/sub mode, where
//     miniredis refuses data commands (they must not be logged).
//   - Miniredis.dbs, RedisDB.ttl, RedisDB.hashTTLs: which databases exist
//     (for snapshots) and whether any key or hash field has a TTL (for the
//     expiry clock).
type introspect struct {
	ctxType    reflect.Type
	fNested    int
	fDB        int
	fTx        int
	fSub       int
	fDbs       int
	fTTL       int
	fHashTTLs  int
	redisDBTyp reflect.Type
}

func fieldIndex(t reflect.Type, name string, kinds ...reflect.Kind) (int, error) {
	f, ok := t.FieldByName(name)
	if !ok || len(f.Index) != 1 {
		return 0, fmt.Errorf("miniredis internals changed: %s has no field %q", t, name)
	}
	for _, k := range kinds {
		if f.Type.Kind() == k {
			return f.Index[0], nil
		}
	}
	return 0, fmt.Errorf("miniredis internals changed: %s.%s is a %s", t, name, f.Type.Kind())
}

func newIntrospect(m *miniredis.Miniredis) (*introspect, error) {
	// A PING on a private peer makes miniredis create its per-connection
	// context, whose type we then inspect.
	var buf bytes.Buffer
	p := server.NewPeer(bufio.NewWriter(&buf))
	m.Server().Dispatch(p, []string{"PING"})
	if p.Ctx == nil {
		return nil, fmt.Errorf("miniredis internals changed: no connection context after PING")
	}
	in := &introspect{ctxType: reflect.TypeOf(p.Ctx)}
	if in.ctxType.Kind() != reflect.Pointer || in.ctxType.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("miniredis internals changed: connection context is %s", in.ctxType)
	}
	ct := in.ctxType.Elem()
	var err error
	if in.fNested, err = fieldIndex(ct, "nested", reflect.Bool); err != nil {
		return nil, err
	}
	if in.fDB, err = fieldIndex(ct, "selectedDB", reflect.Int); err != nil {
		return nil, err
	}
	if in.fTx, err = fieldIndex(ct, "transaction", reflect.Slice); err != nil {
		return nil, err
	}
	if in.fSub, err = fieldIndex(ct, "subscriber", reflect.Pointer); err != nil {
		return nil, err
	}
	mt := reflect.TypeOf(m).Elem()
	if in.fDbs, err = fieldIndex(mt, "dbs", reflect.Map); err != nil {
		return nil, err
	}
	dbsT := mt.Field(in.fDbs).Type
	if dbsT.Key().Kind() != reflect.Int || dbsT.Elem().Kind() != reflect.Pointer || dbsT.Elem().Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("miniredis internals changed: Miniredis.dbs is %s", dbsT)
	}
	in.redisDBTyp = dbsT.Elem().Elem()
	if in.fTTL, err = fieldIndex(in.redisDBTyp, "ttl", reflect.Map); err != nil {
		return nil, err
	}
	if in.fHashTTLs, err = fieldIndex(in.redisDBTyp, "hashTTLs", reflect.Map); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *introspect) ctx(c any) (reflect.Value, bool) {
	if c == nil {
		return reflect.Value{}, false
	}
	v := reflect.ValueOf(c)
	if v.Type() != in.ctxType || v.IsNil() {
		return reflect.Value{}, false
	}
	return v.Elem(), true
}

// nested reports whether a peer's context belongs to a redis.call from Lua.
func (in *introspect) nested(c any) bool {
	v, ok := in.ctx(c)
	return ok && v.Field(in.fNested).Bool()
}

// db is the selected database of a peer's context (0 before any command).
func (in *introspect) db(c any) int {
	v, ok := in.ctx(c)
	if !ok {
		return 0
	}
	return int(v.Field(in.fDB).Int())
}

// inTx reports whether a peer is between MULTI and EXEC/DISCARD.
func (in *introspect) inTx(c any) bool {
	v, ok := in.ctx(c)
	return ok && !v.Field(in.fTx).IsNil()
}

// subscribed reports whether a peer is in pub/sub mode, where miniredis
// refuses every command but (P)(UN)SUBSCRIBE, PING and QUIT.
func (in *introspect) subscribed(c any) bool {
	v, ok := in.ctx(c)
	return ok && !v.Field(in.fSub).IsNil()
}

// dbIDs lists the databases miniredis has created, sorted. Call with m locked.
func (in *introspect) dbIDs(m *miniredis.Miniredis) []int {
	dbs := reflect.ValueOf(m).Elem().Field(in.fDbs)
	ids := make([]int, 0, dbs.Len())
	it := dbs.MapRange()
	for it.Next() {
		ids = append(ids, int(it.Key().Int()))
	}
	sort.Ints(ids)
	return ids
}

// anyTTL reports whether any key or hash field has a TTL. Call with m locked.
func (in *introspect) anyTTL(m *miniredis.Miniredis) bool {
	dbs := reflect.ValueOf(m).Elem().Field(in.fDbs)
	it := dbs.MapRange()
	for it.Next() {
		db := it.Value().Elem()
		if db.Field(in.fTTL).Len() > 0 {
			return true
		}
		h := db.Field(in.fHashTTLs)
		if h.Len() > 0 {
			hit := h.MapRange()
			for hit.Next() {
				if hit.Value().Len() > 0 {
					return true
				}
			}
		}
	}
	return false
}
