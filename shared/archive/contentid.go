package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// ContentID is a short name for a record made of these parts (each encoded as JSON): equal
// parts give the same id, so that a plan held twice is archived once. Not for secrets.
func ContentID[T any](scope string, parts []T) string {
	h := sha256.New()
	h.Write([]byte(scope))
	for _, p := range parts {
		b, _ := json.Marshal(p) // the parts are plain records; one that cannot encode adds nothing
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
