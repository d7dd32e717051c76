package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The policy grammar needs what encoding/json's map decoding hides: which
// keys were duplicated, and whether a value was a string, a number, a bool,
// an array or an object. So documents are decoded into a small tree first.

type kind uint8

const (
	kindString kind = iota + 1
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindNumber:
		return "a number"
	case kindBool:
		return "a boolean"
	case kindNull:
		return "null"
	case kindObject:
		return "an object"
	case kindArray:
		return "an array"
	}
	return "nothing"
}

type node struct {
	kind kind
	text string // strings, number literals, "true"/"false"
	// Objects, in document order. dup is the first key seen twice, so the
	// grammar can report it with the context it knows.
	keys  []string
	vals  []*node
	dup   string
	index map[string]int // key → first position, for large objects
	// Arrays.
	elems []*node
}

// get returns the value of key in an object (the first, if duplicated), nil
// when absent.
func (n *node) get(key string) *node {
	if n.index != nil {
		if i, ok := n.index[key]; ok {
			return n.vals[i]
		}
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// indexAt is the object size from which get uses a map rather than a scan,
// so an object of thousands of keys decodes in linear time.
const indexAt = 16

// add appends a member to an object, noting the first duplicated key.
func (n *node) add(key string, v *node) {
	if n.dup == "" && n.get(key) != nil {
		n.dup = key
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
	switch {
	case len(n.keys) == indexAt:
		n.index = make(map[string]int, 2*indexAt)
		for i := len(n.keys) - 1; i >= 0; i-- { // first occurrence wins
			n.index[n.keys[i]] = i
		}
	case n.index != nil:
		if _, ok := n.index[key]; !ok {
			n.index[key] = len(n.keys) - 1
		}
	}
}

// maxDepth is deeper than any policy element nests (policy, Statement array,
// statement, Condition, operator, key, value array, value is 8).
const maxDepth = 16

func decodeJSON(doc string) (*node, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	n, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, syntaxErrorf("policy has more text after its JSON object, at byte %d", dec.InputOffset()+1)
	}
	return n, nil
}

func decodeValue(dec *json.Decoder, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, syntaxErrorf("policy nests JSON more than %d levels deep, deeper than any policy element", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: kindObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, jsonError(err)
				}
				key, ok := kt.(string)
				if !ok { // the decoder reports this itself; kept for safety
					return nil, syntaxErrorf("policy is not valid JSON: object key is not a string")
				}
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.add(key, v)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, jsonError(err)
			}
			return n, nil
		case '[':
			n := &node{kind: kindArray}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, jsonError(err)
			}
			return n, nil
		}
	case string:
		return &node{kind: kindString, text: t}, nil
	case json.Number:
		return &node{kind: kindNumber, text: string(t)}, nil
	case bool:
		if t {
			return &node{kind: kindBool, text: "true"}, nil
		}
		return &node{kind: kindBool, text: "false"}, nil
	case nil:
		return &node{kind: kindNull}, nil
	}
	return nil, syntaxErrorf("policy is not valid JSON: unexpected %v", tok)
}

func jsonError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return syntaxErrorf("policy is not valid JSON: %s, at byte %d", se.Error(), se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return syntaxErrorf("policy is not valid JSON: it ends before its last value is complete")
	}
	return syntaxErrorf("policy is not valid JSON: %v", err)
}

func syntaxErrorf(format string, args ...any) *SyntaxError {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}
