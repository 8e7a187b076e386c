package manifests

// RFC 8785 JSON Canonicalization Scheme (JCS).
//
// JCS is what ECMAScript's JSON.stringify writes for a parsed document, with
// object members sorted: no insignificant whitespace; keys sorted by their
// UTF-16 code units; strings with only the escapes JSON.stringify uses;
// numbers as IEEE doubles in ECMAScript Number-to-string form. Two documents
// with the same data then have the same bytes and the same digest.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// CanonicalJSON returns the RFC 8785 canonical form of one JSON document. It
// refuses what JCS cannot canonicalize: invalid JSON or UTF-8, escaped lone
// surrogates, duplicate object keys (after unescaping), and numbers outside
// the IEEE double range.
func CanonicalJSON(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("jcs: invalid UTF-8")
	}
	if !json.Valid(data) {
		// Only for the message: json.Valid says no more than false.
		var raw json.RawMessage
		err := json.Unmarshal(data, &raw)
		return nil, fmt.Errorf("jcs: invalid JSON: %v", err)
	}
	if err := checkSurrogateEscapes(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseJSONValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("jcs: data after the JSON value (%v)", err)
	}
	return appendJCS(nil, v)
}

// MarshalJCS returns the RFC 8785 canonical JSON of v as json.Marshal sees it.
func MarshalJCS(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("jcs: %w", err)
	}
	return CanonicalJSON(b)
}

// checkSurrogateEscapes refuses \u escapes of unpaired UTF-16 surrogates,
// which encoding/json would silently turn into U+FFFD. data is valid JSON, so
// every backslash begins an escape inside a string and a linear scan over
// escape pairs cannot misread a string boundary.
func checkSurrogateEscapes(data []byte) error {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		i++ // data[i] is the escaped character
		if data[i] != 'u' {
			continue
		}
		r := hex4(data[i+1 : i+5])
		i += 4
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low escape must follow
			if i+6 < len(data) && data[i+1] == '\\' && data[i+2] == 'u' {
				if lo := hex4(data[i+3 : i+7]); lo >= 0xdc00 && lo <= 0xdfff {
					i += 6
					continue
				}
			}
			return fmt.Errorf("jcs: lone surrogate \\u%04x", r)
		case utf16.IsSurrogate(r):
			return fmt.Errorf("jcs: lone surrogate \\u%04x", r)
		}
	}
	return nil
}

// hex4 decodes four hex digits that json.Valid has already checked.
func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 16)
	return rune(n)
}

// parseJSONValue reads one value into nil, bool, float64, string, []any or
// map[string]any. The data has passed json.Valid, so the token stream is
// well formed and nesting is bounded by encoding/json's depth limit.
func parseJSONValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("jcs: %w", err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			arr := []any{}
			for dec.More() {
				e, err := parseJSONValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, e)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("jcs: %w", err)
			}
			k := kt.(string) // object keys are strings in valid JSON
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("jcs: duplicate key %q", k)
			}
			if obj[k], err = parseJSONValue(dec); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token() // '}'
		return obj, err
	case json.Number:
		f, err := strconv.ParseFloat(string(tok), 64)
		if err != nil {
			return nil, fmt.Errorf("jcs: number %s is not an IEEE double: %w", tok, err)
		}
		return f, nil
	default: // nil, bool, string
		return tok, nil
	}
}

// appendJCS appends the canonical form of a value of the types
// parseJSONValue returns. Strings are valid UTF-8: CanonicalJSON checked its
// input and CBOR text strings are checked by the decoder.
func appendJCS(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		return appendJCSNumber(b, v)
	case string:
		return appendJCSString(b, v), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJCS(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJCSString(b, k)
			b = append(b, ':')
			if b, err = appendJCS(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	default:
		return nil, fmt.Errorf("jcs: unexpected type %T", v)
	}
}

// compareUTF16 orders strings by their UTF-16 code units (RFC 8785 §3.2.3).
// That is code point order except that a supplementary character (a
// surrogate pair, 0xd800-0xdbff first) sorts before U+E000-U+FFFF.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			if ua, ub := firstUTF16Unit(ra), firstUTF16Unit(rb); ua != ub {
				return cmp.Compare(ua, ub)
			}
			// Same high surrogate: the low ones order as the code points do.
			return cmp.Compare(ra, rb)
		}
		a, b = a[na:], b[nb:]
	}
	return cmp.Compare(len(a), len(b))
}

func firstUTF16Unit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	hi, _ := utf16.EncodeRune(r)
	return hi
}

// appendJCSString writes s as JSON.stringify does: the short escapes for
// \b \f \n \r \t " and \, \u00xx (lowercase hex) for other control
// characters, and everything else, '/' and non-ASCII included, as is.
func appendJCSString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJCSNumber writes f as ECMAScript's Number::toString does (ECMA-262
// §6.1.6.1.20): the shortest digits that round-trip, in plain notation for
// 1e-6 <= |f| < 1e21 and as d.ddde±n otherwise; -0 is 0.
func appendJCSNumber(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("jcs: %v is not a JSON number", f)
	}
	if f == 0 {
		return append(b, '0'), nil
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	// Go's shortest 'e' form, "d.ddde±xx", gives the same digits ECMAScript
	// picks: the fewest that round-trip, the closest to f on a tie.
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	at := bytes.IndexByte(e, 'e')
	exp, _ := strconv.Atoi(string(e[at+1:]))
	digits := make([]byte, 0, 17)
	digits = append(digits, e[0])
	if at > 1 {
		digits = append(digits, e[2:at]...)
	}
	k, n := len(digits), exp+1 // f = 0.digits × 10^n
	switch {
	case k <= n && n <= 21:
		b = append(b, digits...)
		for range n - k {
			b = append(b, '0')
		}
	case 0 < n && n <= 21:
		b = append(b, digits[:n]...)
		b = append(b, '.')
		b = append(b, digits[n:]...)
	case -6 < n && n <= 0:
		b = append(b, '0', '.')
		for range -n {
			b = append(b, '0')
		}
		b = append(b, digits...)
	default:
		b = append(b, digits[0])
		if k > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		if n-1 >= 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, int64(n-1), 10)
	}
	return b, nil
}
