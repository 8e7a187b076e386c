package manifests

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// RFC 8785 §3.2.2.
		{"rfc 8785 example", `{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`, `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		// RFC 8785 §3.2.3: UTF-16 code unit order puts the emoji (0xd83d)
		// before U+FB33 although its code point is larger.
		{"rfc 8785 sorting", `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`, "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
			"\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{"nested objects sorted", `{"b":{"z":1,"a":[{"y":0,"x":0}]},"a":[]}`, `{"a":[],"b":{"a":[{"x":0,"y":0}],"z":1}}`},
		{"prefix sorts first", `{"ab":1,"a":2,"":3}`, `{"":3,"a":2,"ab":1}`},
		{"scalars", ` "x" `, `"x"`},
		{"whitespace", "[ 1 ,\n\t2\r ]", `[1,2]`},
		{"empty containers", `[{},[]]`, `[{},[]]`},
		{"control characters", `"\u0000\u0008\u0009\u000a\u000b\u000c\u000d\u001f\u0020"`, `"\u0000\b\t\n\u000b\f\r\u001f "`},
		{"DEL, slash, U+2028 and non-ASCII are literal", `"\u007f\/\u2028\u00e9\ud83d\ude00"`, "\"\x7f/\u2028\u00e9\U0001F600\""},
		{"raw non-ASCII kept", `"é😀"`, `"é😀"`},
		{"escaped key equal to another after unescaping is still sorted", `{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{"negative zero", `[-0, -0.0, 0e10]`, `[0,0,0]`},
		{"integers", `[1, -1, 100, 1e2, 12345678901234567890]`, `[1,-1,100,100,12345678901234567000]`},
		{"fractions", `[0.1, 1.5, -2.25, 0.000001, 0.0000001]`, `[0.1,1.5,-2.25,0.000001,1e-7]`},
		{"exponent boundary", `[1e20, 1e21, 123456789012345678901234]`, `[100000000000000000000,1e+21,1.2345678901234569e+23]`},
		{"underflow rounds to zero", `1e-400`, `0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("CanonicalJSON =\n%s\nwant\n%s", got, tt.want)
			}
			again, err := CanonicalJSON(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("not idempotent: %s, %v", again, err)
			}
		})
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"duplicate key", `{"a":1,"a":2}`, "duplicate key"},
		{"duplicate key after unescaping", `{"a":1,"\u0061":2}`, "duplicate key"},
		{"nested duplicate key", `[{"x":{"k":1,"k":1}}]`, "duplicate key"},
		{"lone high surrogate", `"\ud800"`, "lone surrogate"},
		{"lone low surrogate", `"\udc00"`, "lone surrogate"},
		{"high surrogate then non-surrogate", `"\ud800\u0041"`, "lone surrogate"},
		{"reversed pair", `"\ude00\ud83d"`, "lone surrogate"},
		{"high surrogate then escaped backslash", `"\ud800\\udc00"`, "lone surrogate"},
		{"lone surrogate in key", `{"\udfff":1}`, "lone surrogate"},
		{"invalid UTF-8", "\"\xff\"", "invalid UTF-8"},
		{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8"},
		{"overflow", `1e400`, "not an IEEE double"},
		{"trailing value", `{} {}`, "invalid JSON"},
		{"truncated", `{"a":`, "invalid JSON"},
		{"NaN literal", `NaN`, "invalid JSON"},
		{"empty", ``, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CanonicalJSON(%q) = %s, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
		})
	}
}

// RFC 8785 Appendix B: IEEE 754 doubles and their canonical text.
func TestJCSNumbers(t *testing.T) {
	tests := []struct{ bits, want string }{
		{"0000000000000000", "0"},
		{"8000000000000000", "0"},
		{"0000000000000001", "5e-324"},
		{"8000000000000001", "-5e-324"},
		{"7fefffffffffffff", "1.7976931348623157e+308"},
		{"ffefffffffffffff", "-1.7976931348623157e+308"},
		{"4340000000000000", "9007199254740992"},
		{"c340000000000000", "-9007199254740992"},
		{"4430000000000000", "295147905179352830000"},
		{"44b52d02c7e14af5", "9.999999999999997e+22"},
		{"44b52d02c7e14af6", "1e+23"},
		{"44b52d02c7e14af7", "1.0000000000000001e+23"},
		{"444b1ae4d6e2ef4e", "999999999999999700000"},
		{"444b1ae4d6e2ef4f", "999999999999999900000"},
		{"444b1ae4d6e2ef50", "1e+21"},
		{"3eb0c6f7a0b5ed8c", "9.999999999999997e-7"},
		{"3eb0c6f7a0b5ed8d", "0.000001"},
		{"41b3de4355555553", "333333333.3333332"},
		{"41b3de4355555554", "333333333.33333325"},
		{"41b3de4355555555", "333333333.3333333"},
		{"41b3de4355555556", "333333333.3333334"},
		{"41b3de4355555557", "333333333.33333343"},
		{"becbf647612f3696", "-0.0000033333333333333333"},
		{"43143ff3c1cb0959", "1424953923781206.2"},
	}
	for _, tt := range tests {
		t.Run(tt.bits, func(t *testing.T) {
			bits, err := strconv.ParseUint(tt.bits, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			f := math.Float64frombits(bits)
			got, err := appendJCSNumber(nil, f)
			if err != nil || string(got) != tt.want {
				t.Errorf("appendJCSNumber(%v) = %s, %v; want %s", f, got, err, tt.want)
			}
			// The text parses back to the same double, and is its own canonical form.
			if back, err := strconv.ParseFloat(tt.want, 64); err != nil || back != f && f != 0 {
				t.Errorf("ParseFloat(%s) = %v, %v; want %v", tt.want, back, err, f)
			}
			if c, err := CanonicalJSON([]byte(tt.want)); err != nil || string(c) != tt.want {
				t.Errorf("CanonicalJSON(%s) = %s, %v", tt.want, c, err)
			}
		})
	}
	// Appendix B's NaN and Infinity have no JSON form.
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, err := appendJCSNumber(nil, f); err == nil {
			t.Errorf("appendJCSNumber(%v) = %s, want an error", f, got)
		}
	}
}

func TestCompareUTF16(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "a", -1},
		{"a", "ab", -1},
		{"b", "ab", 1},
		{"\U0001F600", "\ufb33", -1}, // 0xd83d < 0xfb33
		{"\U0001F600", "\ud7ff", 1},  // 0xd83d > 0xd7ff
		{"\U0001F600", "\U0001F601", -1},
		{"\U00010000", "\U0001F600", -1},
		{"\u00f6", "\u20ac", -1},
	}
	for _, tt := range tests {
		if got := compareUTF16(tt.a, tt.b); got != tt.want {
			t.Errorf("compareUTF16(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareUTF16(tt.b, tt.a); got != -tt.want {
			t.Errorf("compareUTF16(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestMarshalJCS(t *testing.T) {
	v := struct {
		Name  string            `json:"name"`
		HTML  string            `json:"html"`
		Size  float64           `json:"size"`
		Attrs map[string]string `json:"attrs"`
	}{"x", "<a&b>", 1e21, map[string]string{"\U0001F600": "2", "\ufb33": "1"}}
	got, err := MarshalJCS(v)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"attrs\":{\"\U0001F600\":\"2\",\"\ufb33\":\"1\"},\"html\":\"<a&b>\",\"name\":\"x\",\"size\":1e+21}"
	if string(got) != want {
		t.Errorf("MarshalJCS = %s, want %s", got, want)
	}
	if _, err := MarshalJCS(math.NaN()); err == nil {
		t.Error("MarshalJCS(NaN) succeeded")
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"literals":[null,true,false]}`,
		`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`,
		`"\u0000\/\ud83d\ude00é"`, `[-0,1e21,1e-7,5e-324]`, `{"a":1,"a":2}`, `"\ud800"`, `1e400`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := CanonicalJSON(data)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("CanonicalJSON(%q) = %q, not valid JSON", data, out)
		}
		again, err := CanonicalJSON(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", data, out, again, err)
		}
		// Canonicalizing changes the bytes, never the data.
		var a, b any
		if json.Unmarshal(data, &a) != nil || json.Unmarshal(out, &b) != nil {
			t.Fatalf("Unmarshal failed on %q or %q", data, out)
		}
		if !reflect.DeepEqual(a, b) { // float ==, so -0 equals 0
			t.Fatalf("data changed: %q -> %q", data, out)
		}
	})
}
