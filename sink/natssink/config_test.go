package natssink

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Config{URLs: "nats://127.0.0.1:4222"}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" for valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"list", func(c *Config) { c.URLs = "nats://a:1, nats://b:2" }, ""},
		{"no url", func(c *Config) { c.URLs = " " }, "no server URL"},
		{"empty in list", func(c *Config) { c.URLs = "nats://a:1,," }, "empty server URL"},
		{"token and user", func(c *Config) { c.Token, c.User, c.Password = "t", "u", "p" }, "token and user are both set"},
		{"creds and nkey", func(c *Config) { c.CredsFile, c.NKeySeedFile = "a", "b" }, "creds file and nkey seed file are both set"},
		{"three", func(c *Config) { c.CredsFile, c.Token, c.User, c.Password = "a", "t", "u", "p" }, "creds file and token and user"},
		{"user alone", func(c *Config) { c.User = "u" }, "user and password must be set together"},
		{"password alone", func(c *Config) { c.Password = "p" }, "user and password must be set together"},
		{"cert alone", func(c *Config) { c.TLSCertFile = "c.pem" }, "certificate and key files must be set together"},
		{"key alone", func(c *Config) { c.TLSKeyFile = "k.pem" }, "certificate and key files must be set together"},
		{"negative timeout", func(c *Config) { c.PublishTimeout = -time.Second }, "negative publish timeout"},
		{"negative replicas", func(c *Config) { c.Replicas = -1 }, "negative replica count"},
		{"window over age", func(c *Config) { c.CreateStream, c.DuplicateWindow, c.MaxAge = true, time.Hour, time.Minute }, "longer than max age"},
		{"window over default age", func(c *Config) { c.CreateStream, c.DuplicateWindow = true, 31*24*time.Hour }, "longer than max age"},
		{"no age limit", func(c *Config) { c.CreateStream, c.DuplicateWindow, c.MaxAge = true, time.Hour, -1 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{URLs: "x", MaxAge: -1}.withDefaults()
	if c.Stream != StreamName || c.PublishTimeout != 10*time.Second || c.DuplicateWindow != 2*time.Minute ||
		c.MaxAge != 0 || c.Replicas != 1 || c.DedupeMargin != DefaultDedupeMargin || c.ClockSkew != DefaultClockSkew {
		t.Errorf("defaults %+v", c)
	}
}

func TestBackoff(t *testing.T) {
	base, maxWait := 100*time.Millisecond, 2*time.Second
	for attempts, lo := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: 1600 * time.Millisecond, 6: 2 * time.Second, 1000: 2 * time.Second} {
		for range 50 {
			d := backoff(attempts, base, maxWait)
			if d < lo || d > lo+lo/5 {
				t.Fatalf("backoff(%d) = %v, want %v..%v", attempts, d, lo, lo+lo/5)
			}
		}
	}
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:p@a:4222, tls://b:1": "nats://[redacted]@a:4222,tls://b:1",
		"tok@host:4222":                "[redacted]@host:4222",
		"nats://127.0.0.1:4222":        "nats://127.0.0.1:4222",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}
