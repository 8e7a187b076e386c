package manifests

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func bigInt(t testing.TB, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("bad big int %q", s)
	}
	return n
}

// RFC 8949 Appendix A examples whose first encoding is already core
// deterministic, as Go values.
func TestEncodeCBORAppendixA(t *testing.T) {
	tests := []struct {
		name string
		v    any
		hex  string
	}{
		{"0", 0, "00"},
		{"1", 1, "01"},
		{"10", 10, "0a"},
		{"23", 23, "17"},
		{"24", 24, "1818"},
		{"25", 25, "1819"},
		{"100", 100, "1864"},
		{"1000", 1000, "1903e8"},
		{"1000000", 1000000, "1a000f4240"},
		{"1000000000000", int64(1000000000000), "1b000000e8d4a51000"},
		{"2^64-1", uint64(math.MaxUint64), "1bffffffffffffffff"},
		{"2^64", bigInt(t, "18446744073709551616"), "c249010000000000000000"},
		{"-2^64", bigInt(t, "-18446744073709551616"), "3bffffffffffffffff"},
		{"-2^64-1", bigInt(t, "-18446744073709551617"), "c349010000000000000000"},
		{"-1", -1, "20"},
		{"-10", -10, "29"},
		{"-100", -100, "3863"},
		{"-1000", -1000, "3903e7"},
		{"0.0", 0.0, "f90000"},
		{"-0.0", math.Copysign(0, -1), "f98000"},
		{"1.0", 1.0, "f93c00"},
		{"1.1", 1.1, "fb3ff199999999999a"},
		{"1.5", 1.5, "f93e00"},
		{"65504.0", 65504.0, "f97bff"},
		{"100000.0", 100000.0, "fa47c35000"},
		{"float32 max", 3.4028234663852886e+38, "fa7f7fffff"},
		{"1.0e+300", 1.0e+300, "fb7e37e43c8800759c"},
		{"smallest float16 subnormal", 5.960464477539063e-8, "f90001"},
		{"smallest float16 normal", 0.00006103515625, "f90400"},
		{"-4.0", -4.0, "f9c400"},
		{"-4.1", -4.1, "fbc010666666666666"},
		{"Infinity", math.Inf(1), "f97c00"},
		{"NaN", math.NaN(), "f97e00"},
		{"-Infinity", math.Inf(-1), "f9fc00"},
		{"float32 1.5", float32(1.5), "f93e00"},
		{"false", false, "f4"},
		{"true", true, "f5"},
		{"null", nil, "f6"},
		{"simple(16)", cbor.SimpleValue(16), "f0"},
		{"simple(255)", cbor.SimpleValue(255), "f8ff"},
		{"tag 23", cbor.Tag{Number: 23, Content: []byte{1, 2, 3, 4}}, "d74401020304"},
		{"tag 24", cbor.Tag{Number: 24, Content: []byte("dIETF")}, "d818456449455446"},
		{"tag 32", cbor.Tag{Number: 32, Content: "http://www.example.com"}, "d82076687474703a2f2f7777772e6578616d706c652e636f6d"},
		{"h''", []byte{}, "40"},
		{"h'01020304'", []byte{1, 2, 3, 4}, "4401020304"},
		{`""`, "", "60"},
		{`"a"`, "a", "6161"},
		{`"IETF"`, "IETF", "6449455446"},
		{`"\"\\"`, "\"\\", "62225c"},
		{`"ü"`, "\u00fc", "62c3bc"},
		{`"水"`, "\u6c34", "63e6b0b4"},
		{`"𐅑"`, "\U00010151", "64f0908591"},
		{"[]", []any{}, "80"},
		{"[1,2,3]", []int{1, 2, 3}, "83010203"},
		{"[1,[2,3],[4,5]]", []any{1, []int{2, 3}, []int{4, 5}}, "8301820203820405"},
		{"25 elements", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25},
			"98190102030405060708090a0b0c0d0e0f101112131415161718181819"},
		{"{}", map[string]any{}, "a0"},
		{"{1:2,3:4}", map[int]int{3: 4, 1: 2}, "a201020304"},
		{`{"a":1,"b":[2,3]}`, map[string]any{"b": []int{2, 3}, "a": 1}, "a26161016162820203"},
		{`["a",{"b":"c"}]`, []any{"a", map[string]string{"b": "c"}}, "826161a161626163"},
		{`{"a":"A",...,"e":"E"}`, map[string]string{"e": "E", "d": "D", "c": "C", "b": "B", "a": "A"},
			"a56161614161626142616361436164614461656145"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustHex(t, tt.hex)
			got, err := EncodeCBOR(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("EncodeCBOR = %x, want %x", got, want)
			}
			if err := CanonicalCBOR(want); err != nil {
				t.Errorf("CanonicalCBOR(%x) = %v", want, err)
			}
		})
	}
}

// Every Appendix A example that is valid under core deterministic rules
// decodes into any and re-encodes to the same bytes, except the few this
// package refuses on purpose.
func TestCanonicalCBORAppendixA(t *testing.T) {
	canonical := []string{
		"00", "01", "0a", "17", "1818", "1819", "1864", "1903e8", "1a000f4240",
		"1b000000e8d4a51000", "1bffffffffffffffff", "c249010000000000000000",
		"3bffffffffffffffff", "c349010000000000000000", "20", "29", "3863", "3903e7",
		"f90000", "f98000", "f93c00", "fb3ff199999999999a", "f93e00", "f97bff",
		"fa47c35000", "fa7f7fffff", "fb7e37e43c8800759c", "f90001", "f90400",
		"f9c400", "fbc010666666666666", "f97c00", "f97e00", "f9fc00",
		"f4", "f5", "f6", "f0", "f8ff",
		"d74401020304", "d818456449455446",
		"d82076687474703a2f2f7777772e6578616d706c652e636f6d",
		"40", "4401020304",
		"60", "6161", "6449455446", "62225c", "62c3bc", "63e6b0b4", "64f0908591",
		"80", "83010203", "8301820203820405",
		"98190102030405060708090a0b0c0d0e0f101112131415161718181819",
		"a0", "a201020304", "a26161016162820203", "826161a161626163",
		"a56161614161626142616361436164614461656145",
	}
	for _, h := range canonical {
		data := mustHex(t, h)
		if err := CanonicalCBOR(data); err != nil {
			t.Errorf("CanonicalCBOR(%s) = %v", h, err)
		}
		var v any
		if err := DecodeCBOR(data, &v); err != nil {
			t.Errorf("DecodeCBOR(%s) = %v", h, err)
			continue
		}
		again, err := EncodeCBOR(v)
		if err != nil || !bytes.Equal(again, data) {
			t.Errorf("EncodeCBOR(DecodeCBOR(%s)) = %x, %v", h, again, err)
		}
	}

	// Canonical, but fxamacker decodes them to values that cannot give the
	// same bytes back (time.Time, nil), so they are refused as unsupported,
	// not misreported as non-canonical.
	unsupported := []string{
		"c074323031332d30332d32315432303a30343a30305a", // 0("2013-03-21T20:04:00Z")
		"c11a514b67b0",               // 1(1363896240)
		"c1fb41d452d9ec200000",       // 1(1363896240.5)
		"f7",                         // undefined
		"a1f97e0001",                 // {NaN: 1}
		"a1c24901000000000000000001", // {2^64: 1}
	}
	for _, h := range unsupported {
		err := CanonicalCBOR(mustHex(t, h))
		if err == nil || errors.Is(err, ErrNotCanonical) {
			t.Errorf("CanonicalCBOR(%s) = %v, want an unsupported-item error", h, err)
		}
	}
}

func TestCanonicalCBORRejects(t *testing.T) {
	tests := []struct {
		name         string
		hex          string
		notCanonical bool // ErrNotCanonical rather than a decode error
	}{
		{"0 in two bytes", "1800", true},
		{"1 in three bytes", "190001", true},
		{"24 in three bytes", "190018", true},
		{"-1 in two bytes", "3800", true},
		{"1.0 as float64", "fb3ff0000000000000", true},
		{"1.0 as float32", "fa3f800000", true},
		{"Infinity as float32", "fa7f800000", true},
		{"NaN as float32", "fa7fc00000", true},
		{"-Infinity as float32", "faff800000", true},
		{"Infinity as float64", "fb7ff0000000000000", true},
		{"NaN as float64", "fb7ff8000000000000", true},
		{"-Infinity as float64", "fbfff0000000000000", true},
		{"NaN with payload", "f97e01", true},
		{"string length in two bytes", "780161", true},
		{"bignum that fits uint64", "c24101", true},
		{"bignum with leading zero", "c24a00010000000000000000", true},
		{"unsorted keys", "a2616201616102", true},
		{"length-first key order", "a261610119" + "03e802", true}, // {"a":1, 1000:2}
		{"indefinite array", "9f010203ff", false},
		{"indefinite string", "7f657374726561646d696e67ff", false},
		{"indefinite bytes", "5f42010243030405ff", false},
		{"indefinite map", "bf61610161629f0203ffff", false},
		{"duplicate keys", "a2616101616102", false},
		{"trailing byte", "0100", false},
		{"empty", "", false},
		{"truncated", "1a000f42", false},
		{"invalid UTF-8", "61ff", false},
		{"bignum map key", "a1c249010000000000000000" + "01", false},
		{"duplicate NaN keys", "a2f97e0001f97e0002", false},
		{"duplicate NaN keys in a tag", "a2d820f97e0001d820f97e0002", false},
		{"self-described CBOR tag", "d9d9f701", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := mustHex(t, tt.hex)
			var v any
			for fn, err := range map[string]error{
				"CanonicalCBOR": CanonicalCBOR(data),
				"DecodeCBOR":    DecodeCBOR(data, &v),
			} {
				if err == nil {
					t.Errorf("%s(%s) accepted", fn, tt.hex)
				} else if errors.Is(err, ErrNotCanonical) != tt.notCanonical {
					t.Errorf("%s(%s) = %v, want ErrNotCanonical: %v", fn, tt.hex, err, tt.notCanonical)
				}
			}
		})
	}
}

func TestErrNotCanonicalSaysWhatToDo(t *testing.T) {
	err := CanonicalCBOR(mustHex(t, "1800"))
	if !errors.Is(err, ErrNotCanonical) || !strings.Contains(err.Error(), "encode with RFC 8949 core deterministic rules") {
		t.Errorf("error %q", err)
	}
}

// Core deterministic order compares whole encoded keys bytewise (RFC 8949
// §4.2.1), not length first as RFC 7049 §3.9 canonical CBOR did.
func TestEncodeCBORKeyOrder(t *testing.T) {
	tests := []struct {
		name string
		v    any
		hex  string
	}{
		// "b" = 61 62 and "aa" = 62 61 61: 0x61 < 0x62, so "b" first.
		{"aa and b", map[string]int{"aa": 1, "b": 2}, "a2" + "6162" + "02" + "626161" + "01"},
		// 1000 = 19 03 e8 (3 bytes) and "a" = 61 61 (2 bytes): length-first
		// would put "a" first; bytewise 0x19 < 0x61 puts 1000 first.
		{"1000 and a", map[any]int{"a": 1, 1000: 2}, "a2" + "1903e8" + "02" + "6161" + "01"},
		// -1 = 20 (1 byte) and 1000: bytewise 0x19 < 0x20 puts 1000 first.
		{"-1 and 1000", map[int]int{-1: 1, 1000: 2}, "a2" + "1903e8" + "02" + "20" + "01"},
		{"struct fields", struct {
			Long  int `cbor:"aa"`
			Short int `cbor:"b"`
		}{1, 2}, "a2" + "6162" + "02" + "626161" + "01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeCBOR(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, tt.hex); !bytes.Equal(got, want) {
				t.Errorf("EncodeCBOR = %x, want %x", got, want)
			}
			if err := CanonicalCBOR(got); err != nil {
				t.Errorf("CanonicalCBOR(%x) = %v", got, err)
			}
		})
	}
}

type testBlob struct {
	Digest string            `cbor:"digest"`
	Size   uint64            `cbor:"size"`
	Labels map[string]string `cbor:"labels,omitempty"`
}

func TestDecodeCBORStruct(t *testing.T) {
	enc := func(v any) []byte {
		t.Helper()
		b, err := EncodeCBOR(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name         string
		data         []byte
		want         testBlob
		wantErr      bool
		notCanonical bool
	}{
		{"round trip", enc(testBlob{Digest: "sha256:x", Size: 2, Labels: map[string]string{"b": "2", "a": "1"}}),
			testBlob{Digest: "sha256:x", Size: 2, Labels: map[string]string{"a": "1", "b": "2"}}, false, false},
		{"omitempty left out", enc(map[string]any{"digest": "d", "size": 1}), testBlob{Digest: "d", Size: 1}, false, false},
		{"unknown field", enc(map[string]any{"digest": "d", "size": 1, "extra": true}), testBlob{}, true, false},
		{"key in another case", enc(map[string]any{"Digest": "d", "size": 1}), testBlob{}, true, false},
		{"required field missing", enc(map[string]any{"digest": "d"}), testBlob{}, true, true},
		{"empty omitempty field present", enc(map[string]any{"digest": "d", "size": 1, "labels": map[string]string{}}), testBlob{}, true, true},
		{"wrong type", enc(map[string]any{"digest": 1, "size": 1}), testBlob{}, true, false},
		{"duplicate field", mustHex(t, "a3"+"66646967657374"+"6164"+"6473697a6501"+"66646967657374"+"6165"), testBlob{}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testBlob
			err := DecodeCBOR(tt.data, &got)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DecodeCBOR(%x) accepted: %+v", tt.data, got)
				}
				if errors.Is(err, ErrNotCanonical) != tt.notCanonical {
					t.Errorf("DecodeCBOR(%x) = %v, want ErrNotCanonical: %v", tt.data, err, tt.notCanonical)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeCBOR(%x) = %v", tt.data, err)
			}
			if got.Digest != tt.want.Digest || got.Size != tt.want.Size || len(got.Labels) != len(tt.want.Labels) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			for k, v := range tt.want.Labels {
				if got.Labels[k] != v {
					t.Errorf("label %q = %q, want %q", k, got.Labels[k], v)
				}
			}
		})
	}
}

func TestCBORToJSON(t *testing.T) {
	tests := []struct {
		name, hex, want string
	}{
		{"map", "a26161016162820203", `{"a":1,"b":[2,3]}`},
		{"nested", "826161a161626163", `["a",{"b":"c"}]`},
		{"bytes as padded base64", "4401020304", `"AQIDBA=="`},
		{"empty bytes", "40", `""`},
		{"2^53 stays a number", "1b0020000000000000", `9007199254740992`},
		{"2^53+1 becomes a string", "1b0020000000000001", `"9007199254740993"`},
		{"-2^53-1 becomes a string", "3b0020000000000000", `"-9007199254740993"`},
		{"2^64-1", "1bffffffffffffffff", `"18446744073709551615"`},
		{"bignum 2^64", "c249010000000000000000", `"18446744073709551616"`},
		{"negative bignum", "c349010000000000000000", `"-18446744073709551617"`},
		{"float", "fb3ff199999999999a", `1.1`},
		{"-0.0", "f98000", `0`},
		{"1e+300", "fb7e37e43c8800759c", `1e+300`},
		{"NaN is null (RFC 8949 §6.1)", "f97e00", `null`},
		{"Infinity is null", "f97c00", `null`},
		{"simple value is null", "f0", `null`},
		{"tag becomes its content", "d74401020304", `"AQIDBA=="`},
		{"date tag", "c11a514b67b0", `"2013-03-21T20:04:00Z"`},
		{"keys sorted by UTF-16", "a3" + "63efbfbf" + "01" + "64f09f9880" + "02" + "6161" + "03", "{\"a\":3,\"\U0001F600\":2,\"\uffff\":1}"},
		{"escapes", "6a" + "223c3e262f5c0a01c3bc", `"\"<>&/\\\n\u0001ü"`},
		{"true false null", "83f5f4f6", `[true,false,null]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CBORToJSON(mustHex(t, tt.hex))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("CBORToJSON(%s) = %s, want %s", tt.hex, got, tt.want)
			}
		})
	}

	for name, h := range map[string]string{
		"integer key":     "a201020304",
		"byte string key": "a1416101",
		"undefined":       "f7",
		"duplicate keys":  "a2616101616102",
		"trailing byte":   "0100",
	} {
		if got, err := CBORToJSON(mustHex(t, h)); err == nil {
			t.Errorf("%s: CBORToJSON(%s) = %s, want an error", name, h, got)
		}
	}
}

func FuzzCBORRoundTrip(f *testing.F) {
	for _, h := range []string{
		"00", "1bffffffffffffffff", "3bffffffffffffffff", "c249010000000000000000",
		"f90001", "fb3ff199999999999a", "f97e00", "f8ff", "d74401020304",
		"a26161016162820203", "826161a161626163", "a201020304", "a1416101",
		"a2" + "1903e8" + "02" + "6161" + "01", "1800", "9f010203ff", "a2616201616102",
		"c11a514b67b0", "f7",
	} {
		f.Add(mustHex(f, h))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if CanonicalCBOR(data) != nil {
			return
		}
		if j, err := CBORToJSON(data); err == nil {
			if again, err := CanonicalJSON(j); err != nil || !bytes.Equal(again, j) {
				t.Fatalf("CBORToJSON(%x) = %s, not canonical JSON: %s, %v", data, j, again, err)
			}
		}
		var v any
		if err := DecodeCBOR(data, &v); err != nil {
			t.Fatalf("CanonicalCBOR accepted %x but DecodeCBOR: %v", data, err)
		}
		again, err := EncodeCBOR(v)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("EncodeCBOR(DecodeCBOR(%x)) = %x, %v", data, again, err)
		}
	})
}
