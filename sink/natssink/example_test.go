package natssink_test

import (
	"fmt"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink/natssink"
)

func ExampleSubject() {
	pod := &report.Enriched{
		Report: &report.Report{Schema: report.Schema, ID: "b/1", Host: "ip-10-0-0-1.ec2.internal"},
		Pod:    &report.Pod{Namespace: "shop", Name: "cart-7d9f-x2"},
	}
	node := &report.Enriched{Report: &report.Report{Schema: report.Schema, ID: "b/2", Host: "worker-3"}}
	hostile := &report.Enriched{
		Report: &report.Report{Schema: report.Schema, ID: "b/3", Host: "worker-3"},
		Pod:    &report.Pod{Namespace: "evil", Name: "x.>\r\nPUB"},
	}
	fmt.Println(natssink.Subject(pod))
	fmt.Println(natssink.Subject(node))
	fmt.Println(natssink.Subject(hostile))
	// Output:
	// oomscope.v1.kill.ip-10-0-0-1_ec2_internal.shop.cart-7d9f-x2
	// oomscope.v1.kill.worker-3._._
	// oomscope.v1.kill.worker-3.evil.x____PUB
}
