package store

// ApplyKeyTypes are the keys of Apply's script at nowMs and their types.
func ApplyKeyTypes(nowMs int64) (names, types []string) {
	names = applyScript.Keys(nowMs)
	for _, k := range applyScript.keys {
		types = append(types, k.Type)
	}
	return names, types
}
