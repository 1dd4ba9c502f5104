package daemon_test

import (
	"time"

	"github.com/oomscope/oomscope/kmsg"
)

// chanRead is daemon.Source's Read over a channel the test fills: the
// records in the channel, waiting for one until deadline. behind (nil:
// never) says that the test's kernel holds records not in the channel yet;
// while it does, Read does not come back empty, as a real reader would
// not. A closed channel is the end of the log.
func chanRead(ch <-chan kmsg.Record, done <-chan struct{}, dst []kmsg.Record, deadline time.Time, behind func() bool) ([]kmsg.Record, error) {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case rec, ok := <-ch:
			if !ok {
				return dst, kmsg.ErrClosed
			}
			dst = append(dst, rec)
			for {
				select {
				case rec, ok := <-ch:
					if !ok {
						return dst, nil
					}
					dst = append(dst, rec)
				default:
					return dst, nil
				}
			}
		case <-expired:
			if behind == nil || !behind() {
				return dst, nil
			}
			expired = time.After(time.Millisecond) // the kernel has more: wait on
		case <-done:
			return dst, kmsg.ErrClosed
		}
	}
}
