package store

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestKeyTableIsConsistent: one name and one local per key, a type Redis
// knows, and the checkpoint's lists hold exactly the checkpointed keys.
func TestKeyTableIsConsistent(t *testing.T) {
	names, locals := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		if names[k.Name] || locals[k.Local] {
			t.Errorf("key %s (%s) is in the table twice", k.Name, k.Local)
		}
		names[k.Name], locals[k.Local] = true, true
		if !slices.Contains([]string{"hash", "zset", "string"}, k.Type) {
			t.Errorf("key %s: type %q", k.Name, k.Type)
		}
		if k.Number && k.Type != "string" {
			t.Errorf("key %s: a number must be a string", k.Name)
		}
		if !regexp.MustCompile(`^[a-z_]+$`).MatchString(k.Local) {
			t.Errorf("key %s: local %q", k.Name, k.Local)
		}
		if got := slices.Contains(projectionKeyNames(), k.Name); got != k.Checkpoint {
			t.Errorf("key %s: in the checkpoint's lists %v, Checkpoint %v", k.Name, got, k.Checkpoint)
		}
	}
}

// TestLuaScriptsNameTheirKeys: no script addresses a key by position, every
// key local a script (or a library it loads) uses is in its first line, and
// every file of lua/ is loaded.
func TestLuaScriptsNameTheirKeys(t *testing.T) {
	files, err := fs.Glob(luaFiles, "lua/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("lua files: %v %v", files, err)
	}
	loaded := map[string]bool{}
	for _, s := range scripts {
		for _, f := range s.files {
			loaded["lua/"+f] = true
		}
	}
	for _, f := range files {
		if !loaded[f] {
			t.Errorf("%s is loaded by no script", f)
		}
		if strings.Contains(mustRead(strings.TrimPrefix(f, "lua/")), "KEYS[") {
			t.Errorf("%s addresses a key by position (KEYS[n]): name it in its first line and use its local", f)
		}
	}
	comment := regexp.MustCompile(`--[^\n]*`)
	for _, s := range scripts {
		var code strings.Builder
		for _, f := range s.files {
			code.WriteString(comment.ReplaceAllString(mustRead(f), ""))
			code.WriteString("\n")
		}
		for _, k := range keys {
			used := regexp.MustCompile(`\b` + k.Local + `\b`).MatchString(code.String())
			if used && !slices.ContainsFunc(s.keys, func(o keySpec) bool { return o.Local == k.Local }) {
				t.Errorf("%v use %s (%s) without naming it in %s's first line", s.files, k.Local, k.Name, s.files[0])
			}
		}
	}
}

// TestBuildLuaRefusesUnknownKeys: a script naming a key that is not in
// the table, or naming none, is refused when the package loads.
func TestBuildLuaRefusesUnknownKeys(t *testing.T) {
	if _, _, err := buildLua("-- keys: users, userz\nreturn 1\n"); err == nil || !strings.Contains(err.Error(), `"userz" is not in the table`) {
		t.Errorf("unknown key: %v", err)
	}
	if _, _, err := buildLua("return redis.call('GET', KEYS[1])\n"); err == nil {
		t.Error("a script without its keys line was accepted")
	}
	src, ks, err := buildLua("-- keys: users, blue_score\nreturn 1\n")
	if err != nil || len(ks) != 2 || ks[1].Name != KeyBlueScore {
		t.Fatalf("keys %v, %v", ks, err)
	}
	if !strings.HasPrefix(src, "local users, blue_score = KEYS[1], KEYS[2]\n") {
		t.Errorf("prelude: %q", src[:min(len(src), 80)])
	}
}
