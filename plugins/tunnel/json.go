package tunnel

import (
	"bytes"
	"encoding/json"
	"errors"
)

// strictJSON decodes one JSON object into v, refusing unknown fields, so a
// misspelt key is an error rather than a route to the wrong place.
func strictJSON(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errors.New("no arguments")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
