package redact

import (
	"strings"
	"testing"
)

const key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

func TestString(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{
			name: "key with 0x", secrets: []string{key},
			in: "using key " + key + " now", want: "using key " + Mask + " now",
		},
		{
			name: "key without 0x in text", secrets: []string{key},
			in: "PRIVATE_KEY=" + key[2:], want: "PRIVATE_KEY=" + Mask,
		},
		{
			name: "key given without 0x, shown with it", secrets: []string{key[2:]},
			in: "k=" + key, want: "k=0x" + Mask,
		},
		{
			name: "every occurrence", secrets: []string{"hunter22"},
			in: "hunter22 and hunter22hunter22", want: Mask + " and " + Mask + Mask,
		},
		{
			name: "longest first", secrets: []string{"abcdef", "abcdefghij"},
			in: "x abcdefghij y abcdef z", want: "x " + Mask + " y " + Mask + " z",
		},
		{
			name: "longest first, listed the other way", secrets: []string{"abcdefghij", "abcdef"},
			in: "abcdefghij", want: Mask,
		},
		{
			name: "RPC URL with key in path", secrets: []string{"https://eth-mainnet.example/v2/AbCdEf123456"},
			in: "forking https://eth-mainnet.example/v2/AbCdEf123456 at block 1", want: "forking " + Mask + " at block 1",
		},
		{
			name: "secret trimmed", secrets: []string{"  s3cr3tvalue\n"},
			in: "x s3cr3tvalue y", want: "x " + Mask + " y",
		},
		{
			name: "short strings are not secrets", secrets: []string{"abc", "12345", "0x12", ""},
			in: "abc 12345 0x12 stay", want: "abc 12345 0x12 stay",
		},
		{
			name: "six characters is a secret", secrets: []string{"123456"},
			in: "pin 123456", want: "pin " + Mask,
		},
		{
			name: "short 0x secret keeps its prefix whole", secrets: []string{"0x1234"},
			in: "0x1234 and 1234", want: Mask + " and 1234",
		},
		{
			name: "URL userinfo", secrets: nil,
			in: "rpc https://user:p4ss@rpc.example.com/path failed", want: "rpc https://" + Mask + "@rpc.example.com/path failed",
		},
		{
			name: "userinfo in ws URL", secrets: nil,
			in: "wss://alice:s3cret@node.example:8546", want: "wss://" + Mask + "@node.example:8546",
		},
		{
			name: "two URLs with userinfo", secrets: nil,
			in: "a http://u:p@h1/ b https://v:q@h2/", want: "a http://" + Mask + "@h1/ b https://" + Mask + "@h2/",
		},
		{
			name: "URL without userinfo untouched", secrets: nil,
			in: "https://rpc.example.com:8545/path?x=1", want: "https://rpc.example.com:8545/path?x=1",
		},
		{
			name: "email untouched", secrets: nil,
			in: "mail me at a@b.example", want: "mail me at a@b.example",
		},
		{
			name: "nothing to mask", secrets: []string{key},
			in: "Compiler run successful!", want: "Compiler run successful!",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tt.secrets...)
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := string(r.Bytes([]byte(tt.in))); got != tt.want {
				t.Errorf("Bytes(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNoSecretLeft(t *testing.T) {
	url := "https://user:pw-123456@rpc.example/v3/projectkey987654"
	r := New(key, url)
	text := strings.Join([]string{
		"key=" + key,
		"raw=" + key[2:],
		"again " + key,
		"url=" + url,
		"json {\"rpc\":\"" + url + "\"}",
	}, "\n")
	got := r.String(text)
	for _, secret := range []string{key[2:], "pw-123456", "projectkey987654"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q left in:\n%s", secret, got)
		}
	}
}

func TestNilRedactor(t *testing.T) {
	var r *Redactor
	const in = "key 0x59c6995e998f97a5 https://u:p@host/"
	if got := r.String(in); got != in {
		t.Errorf("nil String = %q, want the text unchanged", got)
	}
	if got := string(r.Bytes([]byte(in))); got != in {
		t.Errorf("nil Bytes = %q, want the text unchanged", got)
	}
}

func TestEmptyRedactor(t *testing.T) {
	r := New()
	if got := r.String("plain text"); got != "plain text" {
		t.Errorf("String = %q", got)
	}
	if got := r.String(""); got != "" {
		t.Errorf("String(\"\") = %q", got)
	}
}
