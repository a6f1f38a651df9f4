package game

import (
	"fmt"
	"math/rand/v2"
)

var (
	adjectives = []string{"Swift", "Mighty", "Brave", "Zippy", "Fuzzy", "Turbo", "Cosmic", "Sneaky", "Jolly", "Fierce",
		"Lucky", "Nimble", "Rapid", "Bouncy", "Wild", "Sparky", "Clever", "Dizzy", "Bold", "Funky"}
	animals = []string{"Otter", "Panda", "Falcon", "Tiger", "Gecko", "Badger", "Koala", "Lynx", "Moose", "Yak",
		"Narwhal", "Puffin", "Wombat", "Ferret", "Llama", "Octopus", "Raccoon", "Hedgehog", "Lemur", "Walrus"}
)

// FunName returns a generated player name such as "Turbo Otter 42", used
// when a player joins without choosing one. It always satisfies NormalizeName.
func FunName() string {
	return fmt.Sprintf("%s %s %d", adjectives[rand.IntN(len(adjectives))], animals[rand.IntN(len(animals))], rand.IntN(100))
}
