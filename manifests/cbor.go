package manifests

// Canonical CBOR.
//
// The store hashes the bytes of a CBOR document, so one value must have exactly
// one encoding: RFC 8949 §4.2.1 core deterministic encoding. That is
// preferred serialization (the shortest integer head, the shortest float that
// keeps the value, NaN as 0xf97e00), definite lengths only, and map keys
// sorted bytewise by their encoded form (so "b" = 0x6162 sorts before
// "aa" = 0x626161). EncodeCBOR writes that form; DecodeCBOR and CanonicalCBOR
// refuse anything else, by re-encoding what they decoded and comparing bytes.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// ErrNotCanonical is wrapped by the errors of DecodeCBOR and CanonicalCBOR
// for well-formed CBOR that is not in its one canonical encoding.
var ErrNotCanonical = errors.New("cbor is not canonical: encode with RFC 8949 core deterministic rules (§4.2.1)")

// simpleUndefined is CBOR's undefined (0xf7), which decodes to nil and so
// would re-encode as null.
const simpleUndefined cbor.SimpleValue = 23

// cborModes are the one encoder and decoder configuration this package uses.
type cborModes struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// cachedCBORModes builds the modes once. It is a cached immutable value, not
// mutable global state: fxamacker's modes are immutable and safe for
// concurrent use, and building them per call would redo their validation.
var cachedCBORModes = sync.OnceValues(newCBORModes)

func newCBORModes() (cborModes, error) {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return cborModes{}, fmt.Errorf("cbor encode mode: %w", err)
	}
	simple, err := cbor.NewSimpleValueRegistryFromDefaults(cbor.WithRejectedSimpleValue(simpleUndefined))
	if err != nil {
		return cborModes{}, fmt.Errorf("cbor simple values: %w", err)
	}
	dec, err := cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		IndefLength: cbor.IndefLengthForbidden,
		// Unknown or differently cased keys are errors, not silently dropped or
		// matched, when decoding into a struct.
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		// Into any: unsigned integers stay uint64, negative ones int64 (big.Int
		// below -2^63), floats float64, byte-string map keys cbor.ByteString,
		// bignums big.Int values (unhashable, so a bignum map key is refused
		// rather than escaping duplicate detection as a pointer), unknown tags
		// cbor.Tag. Each re-encodes to the bytes it came from.
		IntDec:           cbor.IntDecConvertNone,
		BigIntDec:        cbor.BigIntDecodeValue,
		MapKeyByteString: cbor.MapKeyByteStringAllowed,
		UTF8:             cbor.UTF8RejectInvalid,
		SimpleValues:     simple,
	}.DecMode()
	if err != nil {
		return cborModes{}, fmt.Errorf("cbor decode mode: %w", err)
	}
	return cborModes{enc: enc, dec: dec}, nil
}

// EncodeCBOR returns the RFC 8949 core deterministic encoding of v, the only
// encoding DecodeCBOR accepts. Struct fields follow their `cbor` (or `json`)
// tags and are sorted like map keys; nil slices and maps encode as null.
// time.Time encodes as untagged whole Unix seconds (fxamacker's default,
// which drops sub-seconds), so keep times as RFC 3339 text.
func EncodeCBOR(v any) ([]byte, error) {
	m, err := cachedCBORModes()
	if err != nil {
		return nil, err
	}
	b, err := m.enc.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}

// DecodeCBOR decodes data into v, which must be a non-nil pointer, and
// accepts only the encoding EncodeCBOR would write for the decoded value:
// it refuses duplicate map keys, indefinite lengths, trailing bytes, keys
// that match no field of a struct, undefined, and (with ErrNotCanonical)
// anything that re-encodes differently. When v is a struct, its canonical
// form includes every field that is not omitempty and leaves out empty
// omitempty fields, so input that differs there is refused too: the struct
// type defines the one accepted encoding. v may be modified on error.
func DecodeCBOR(data []byte, v any) error {
	m, err := cachedCBORModes()
	if err != nil {
		return err
	}
	if err := m.dec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	tree, isAny := v.(*any)
	// Keys that never equal themselves first: re-encoding a map holding
	// them depends on map order, so the answer must not.
	if isAny {
		if err := checkMapKeys(*tree); err != nil {
			return err
		}
	}
	if err := checkReencoding(m.enc, data, v); err != nil {
		// Only on failure: name the unsupported tag rather than blame the encoder.
		if isAny && containsTime(*tree) {
			return errors.New("decode: cbor: tags 0 and 1 (date/time) are not supported")
		}
		return err
	}
	return nil
}

// CanonicalCBOR reports whether data is one well-formed CBOR item in core
// deterministic encoding: DecodeCBOR into an any. A few canonical items
// cannot be told apart from others after fxamacker decodes them into an any,
// so they are refused: tags 0 and 1 (date/time, decoded to time.Time), tag
// 55799 (self-described CBOR, dropped: ErrNotCanonical), undefined (nil),
// and as map keys NaN (never equal to itself), bignums (unhashable) and
// -0.0 beside 0.0 (equal Go keys, so a duplicate).
func CanonicalCBOR(data []byte) error {
	var v any
	return DecodeCBOR(data, &v)
}

// checkReencoding compares data with the canonical encoding of the value
// decoded from it.
func checkReencoding(enc cbor.EncMode, data []byte, v any) error {
	again, err := enc.Marshal(v)
	if err != nil {
		return fmt.Errorf("re-encode: %w", err)
	}
	if !bytes.Equal(again, data) {
		i := 0
		for i < len(again) && i < len(data) && again[i] == data[i] {
			i++
		}
		return fmt.Errorf("%w (first difference at byte %d)", ErrNotCanonical, i)
	}
	return nil
}

// checkMapKeys refuses map keys that are not equal to themselves: NaN, or a
// tag enclosing NaN. The decoder's duplicate check is a Go map lookup, which
// never finds them, so {NaN: 1, NaN: 2} would otherwise pass as canonical.
func checkMapKeys(v any) error {
	switch v := v.(type) {
	case cbor.Tag:
		return checkMapKeys(v.Content)
	case []any:
		for _, e := range v {
			if err := checkMapKeys(e); err != nil {
				return err
			}
		}
	case map[any]any:
		for k, e := range v {
			if k2 := k; k != k2 {
				return fmt.Errorf("decode: cbor: map key %v is not equal to itself, so duplicates cannot be found", k)
			}
			if err := checkMapKeys(k); err != nil {
				return err
			}
			if err := checkMapKeys(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func containsTime(v any) bool {
	switch v := v.(type) {
	case time.Time:
		return true
	case cbor.Tag:
		return containsTime(v.Content)
	case []any:
		for _, e := range v {
			if containsTime(e) {
				return true
			}
		}
	case map[any]any:
		for k, e := range v {
			if containsTime(k) || containsTime(e) {
				return true
			}
		}
	}
	return false
}

// CBORToJSON renders one CBOR item as RFC 8785 canonical JSON for people to
// read. It decodes with DecodeCBOR's rules but does not require canonical
// input. The mapping follows RFC 8949 §6.1 where JSON cannot say more: byte
// strings become standard padded base64, tags become their content, NaN,
// infinities and simple values other than false, true and null become null.
// Integers beyond ±2^53, which an IEEE double would round, become decimal
// strings; dates (tags 0 and 1) become RFC 3339 strings in UTC. Map keys must be
// text strings.
func CBORToJSON(data []byte) ([]byte, error) {
	m, err := cachedCBORModes()
	if err != nil {
		return nil, err
	}
	var v any
	if err := m.dec.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	j, err := cborToJSONValue(v)
	if err != nil {
		return nil, fmt.Errorf("cbor to json: %w", err)
	}
	return appendJCS(nil, j)
}

// maxExactInt is 2^53: every integer of at most this magnitude is an exact
// IEEE double, so JSON readers see the same number.
const maxExactInt = 1 << 53

// cborToJSONValue maps a value decoded into any by cachedCBORModes onto the
// types appendJCS writes: nil, bool, float64, string, []any, map[string]any.
func cborToJSONValue(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, string:
		return v, nil
	case uint64:
		if v <= maxExactInt {
			return float64(v), nil
		}
		return strconv.FormatUint(v, 10), nil
	case int64:
		if v >= -maxExactInt && v <= maxExactInt {
			return float64(v), nil
		}
		return strconv.FormatInt(v, 10), nil
	case big.Int:
		if v.IsInt64() {
			return cborToJSONValue(v.Int64())
		}
		return v.String(), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil
		}
		return v, nil
	case []byte:
		return base64.StdEncoding.EncodeToString(v), nil
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), nil
	case cbor.SimpleValue:
		return nil, nil
	case cbor.Tag:
		return cborToJSONValue(v.Content)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			j, err := cborToJSONValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("map key %#v is not a text string", k)
			}
			j, err := cborToJSONValue(e)
			if err != nil {
				return nil, err
			}
			out[ks] = j
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unexpected decoded type %T", v)
	}
}
