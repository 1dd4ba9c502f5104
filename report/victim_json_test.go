package report

import (
	"encoding/json"
	"testing"
)

func u64(v uint64) *uint64 { return &v }

func TestVictimSizes(t *testing.T) {
	tests := []struct {
		name  string
		sizes [3]*uint64
		want  string
	}{
		{"all read", [3]*uint64{u64(3), u64(2), u64(1)},
			`{"pid":1,"comm":"a","total_vm_bytes":3,"anon_rss_bytes":2,"file_rss_bytes":1}`},
		{"read as zero", [3]*uint64{u64(3), u64(0), u64(0)},
			`{"pid":1,"comm":"a","total_vm_bytes":3,"anon_rss_bytes":0,"file_rss_bytes":0}`},
		{"cut after total-vm", [3]*uint64{u64(3), nil, nil},
			`{"pid":1,"comm":"a","total_vm_bytes":3}`},
		{"none read", [3]*uint64{}, `{"pid":1,"comm":"a"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Victim{PID: 1, Comm: "a"}
			v.SetSizes(tt.sizes[0], tt.sizes[1], tt.sizes[2])
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("Marshal = %s\n      want %s", b, tt.want)
			}
			var back Victim
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.TotalVMBytes != v.TotalVMBytes || back.AnonRSSBytes != v.AnonRSSBytes || back.FileRSSBytes != v.FileRSSBytes {
				t.Errorf("numeric sizes after a round trip %d %d %d, want %d %d %d", back.TotalVMBytes, back.AnonRSSBytes, back.FileRSSBytes,
					v.TotalVMBytes, v.AnonRSSBytes, v.FileRSSBytes)
			}
			if again, _ := json.Marshal(back); string(again) != tt.want {
				t.Errorf("round trip = %s", again)
			}
		})
	}
}
