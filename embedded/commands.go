package embedded

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
)

// readOnly lists the commands that never change the data set; they are not
// logged. Everything else that miniredis knows is logged (a command that
// fails at execution fails again on replay, which is harmless). SELECT is
// here because every record carries its database number.
var readOnly = setOf(
	"AUTH", "BITCOUNT", "BITPOS", "CLIENT", "CLUSTER", "COMMAND", "DBSIZE", "DUMP",
	"ECHO", "EVAL_RO", "EVALSHA_RO", "EXISTS", "EXPIRETIME", "GEODIST", "GEOPOS",
	"GEORADIUS_RO", "GEORADIUSBYMEMBER_RO", "GEOSEARCH", "GET", "GETBIT", "GETRANGE",
	"HELLO", "HEXISTS", "HGET", "HGETALL", "HKEYS", "HLEN", "HMGET", "HPTTL",
	"HRANDFIELD", "HSCAN", "HSTRLEN", "HTTL", "HVALS", "INFO", "KEYS", "LINDEX",
	"LLEN", "LPOS", "LRANGE", "MEMORY", "MGET", "OBJECT", "PEXPIRETIME", "PFCOUNT",
	"PING", "PSUBSCRIBE", "PTTL", "PUBLISH", "PUBSUB", "PUNSUBSCRIBE", "QUIT",
	"RANDOMKEY", "SCAN", "SCARD", "SDIFF", "SELECT", "SINTER", "SINTERCARD",
	"SISMEMBER", "SMEMBERS", "SMISMEMBER", "SRANDMEMBER", "SSCAN", "STRLEN",
	"SUBSCRIBE", "SUNION", "TIME", "TOUCH", "TTL", "TYPE", "UNSUBSCRIBE", "UNWATCH",
	"WAIT", "WATCH", "XINFO", "XLEN", "XPENDING", "XRANGE", "XREAD", "XREVRANGE",
	"ZCARD", "ZCOUNT", "ZINTER", "ZLEXCOUNT", "ZMSCORE", "ZRANDMEMBER", "ZRANGE",
	"ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREVRANGE", "ZREVRANGEBYLEX",
	"ZREVRANGEBYSCORE", "ZREVRANK", "ZSCORE", "ZUNION",
)

// connOnly are commands that touch no data, only the connection or pub/sub;
// they run without the global lock (outside MULTI).
var connOnly = setOf("PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "PUBSUB", "PING", "ECHO")

// subscribeCmds cannot be queued in MULTI here: EXEC runs on a private peer.
var subscribeCmds = setOf("SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE")

// notPersistable are commands whose state the snapshot cannot hold
// (HyperLogLogs, stream consumer groups).
var notPersistable = setOf("PFADD", "PFMERGE", "XGROUP", "XREADGROUP", "XACK", "XCLAIM", "XAUTOCLAIM")

// blockingCmds would wait while holding the global lock, stalling every
// other client.
var blockingCmds = setOf("BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// unsupported returns an error message for a command the durable store
// refuses, or "". Blocking forms are fine inside MULTI, where they do not
// block.
func unsupported(cmd string, args []string, inTx bool) string {
	if notPersistable[cmd] {
		return "ERR " + cmd + " is not supported by the embedded store: its data cannot be persisted"
	}
	blocking := blockingCmds[cmd]
	if cmd == "XREAD" {
		for _, a := range args {
			if strings.EqualFold(a, "BLOCK") {
				blocking = true
			}
			if strings.EqualFold(a, "STREAMS") {
				break
			}
		}
	}
	if blocking && !inTx {
		return "ERR blocking command " + cmd + " is not supported by the embedded store"
	}
	return ""
}

// isReadOnly reports whether a command never changes data.
func isReadOnly(cmd string, args []string) bool {
	if readOnly[cmd] {
		return true
	}
	if cmd == "SCRIPT" && len(args) > 0 && strings.EqualFold(args[0], "EXISTS") {
		return true
	}
	return false
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// isErrorReply reports whether a raw RESP reply is an error.
func isErrorReply(b []byte) bool { return len(b) > 0 && b[0] == '-' }

// execSucceeded reports whether a raw EXEC reply is an array of results (not
// an error, not the null reply of a WATCH abort).
func execSucceeded(b []byte) bool {
	return len(b) > 1 && b[0] == '*' && b[1] != '-'
}

// popReply parses the reply of SPOP (a bulk string, a null, or an array or
// set of bulk strings) into the popped members.
func popReply(b []byte) []string {
	rd := bufio.NewReader(bytes.NewReader(b))
	line, err := rd.ReadString('\n')
	if err != nil || len(line) < 3 {
		return nil
	}
	readBulk := func(hdr string) (string, bool) {
		if len(hdr) < 3 || hdr[0] != '$' {
			return "", false
		}
		n, err := strconv.Atoi(strings.TrimRight(hdr[1:], "\r\n"))
		if err != nil || n < 0 {
			return "", false
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", false
		}
		return string(buf[:n]), true
	}
	switch line[0] {
	case '$':
		if s, ok := readBulk(line); ok {
			return []string{s}
		}
	case '*', '~':
		n, err := strconv.Atoi(strings.TrimRight(line[1:], "\r\n"))
		if err != nil || n <= 0 {
			return nil
		}
		out := make([]string, 0, n)
		for i := 0; i < n; i++ {
			hdr, err := rd.ReadString('\n')
			if err != nil {
				return out
			}
			if s, ok := readBulk(hdr); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// errUnknown is Redis' reply to an unknown command.
func errUnknown(cmd string, args []string) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '" + cmd + "', with args beginning with: ")
	for i, a := range args {
		if i == 20 {
			break
		}
		b.WriteString("'" + a + "' ")
	}
	return strings.TrimSpace(b.String())
}
