package report

import "encoding/json"

// SetSizes sets the victim's Killed-line sizes, read or not (nil), in
// both forms (see [Victim]).
func (v *Victim) SetSizes(totalVM, anonRSS, fileRSS *uint64) {
	v.TotalVM, v.AnonRSS, v.FileRSS = totalVM, anonRSS, fileRSS
	v.TotalVMBytes, v.AnonRSSBytes, v.FileRSSBytes = deref(totalVM), deref(anonRSS), deref(fileRSS)
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// victimPlain is Victim without its methods.
type victimPlain Victim

// UnmarshalJSON reads a victim and fills the numeric copies of its sizes.
func (v *Victim) UnmarshalJSON(b []byte) error {
	var plain victimPlain
	if err := json.Unmarshal(b, &plain); err != nil {
		return err
	}
	*v = Victim(plain)
	v.SetSizes(v.TotalVM, v.AnonRSS, v.FileRSS)
	return nil
}
