// Names: what a job is called when its submitter does not name it.

package jobs

import (
	"math/rand/v2"
	"sync"
)

// The words of generated names: 64 × 64 adjective-noun pairs, enough that the jobs a user looks
// at together rarely share one (names are not unique, ids are).
var (
	nameAdjectives = [...]string{
		"amber", "bold", "brave", "brisk", "calm", "clever", "cosmic", "crisp",
		"curious", "daring", "dusty", "eager", "early", "fancy", "fierce", "fluffy",
		"gentle", "giddy", "glad", "golden", "grand", "happy", "hasty", "hidden",
		"humble", "icy", "jolly", "keen", "kind", "lively", "lucky", "mellow",
		"merry", "mighty", "misty", "modest", "nimble", "noble", "odd", "patient",
		"plucky", "polite", "proud", "quick", "quiet", "rapid", "rosy", "rusty",
		"shiny", "silent", "silver", "sleepy", "snowy", "solid", "steady", "sunny",
		"swift", "tidy", "tiny", "vivid", "warm", "wild", "wise", "witty",
	}
	nameNouns = [...]string{
		"badger", "beaver", "bison", "crane", "cricket", "dingo", "dolphin", "eagle",
		"falcon", "ferret", "finch", "fox", "gecko", "gibbon", "goose", "hare",
		"hedgehog", "heron", "ibis", "jackal", "jaguar", "koala", "lemur", "lion",
		"llama", "lynx", "magpie", "marmot", "meerkat", "mole", "moose", "newt",
		"ocelot", "octopus", "orca", "otter", "owl", "panda", "parrot", "pelican",
		"penguin", "puffin", "quail", "rabbit", "raven", "robin", "salmon", "seal",
		"shark", "sloth", "sparrow", "squid", "stork", "swan", "tapir", "tiger",
		"toucan", "turtle", "viper", "walrus", "weasel", "whale", "wolf", "yak",
	}
)

// namer makes up job names from a random source; safe for concurrent use.
type namer struct {
	mu  sync.Mutex
	rnd *rand.Rand
}

// newNamer draws from src; nil is a source seeded at random.
func newNamer(src rand.Source) *namer {
	if src == nil {
		src = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	return &namer{rnd: rand.New(src)}
}

// next is a new name such as "brave-otter".
func (n *namer) next() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return nameAdjectives[n.rnd.IntN(len(nameAdjectives))] + "-" + nameNouns[n.rnd.IntN(len(nameNouns))]
}
