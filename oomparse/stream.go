package oomparse

import (
	"fmt"

	"github.com/oomscope/oomscope/report"

	"github.com/oomscope/oomscope/kmsg"
)

// RecordSource yields records in order, in the style of bufio.Scanner;
// *kmsg.Scanner is one.
type RecordSource interface {
	Scan() bool
	Record() kmsg.Record
	Err() error
}

// maxHosts bounds the parsers a [Demux] keeps.
const maxHosts = 4096

// Demux keeps one [Parser] per host, for sources that mix hosts (a
// central syslog file): the records of different hosts are never joined
// into one report. A record that names no host (a dmesg or bare line in a
// paste that mixes formats) goes to the parser of the last host named
// before it. Like Parser it is owned by one goroutine.
type Demux struct {
	opts     []Option
	parsers  map[string]*Parser
	order    []string
	lastHost string
}

// NewDemux returns a Demux whose parsers are made with opts.
func NewDemux(opts ...Option) (*Demux, error) {
	if _, err := New(opts...); err != nil {
		return nil, err
	}
	return &Demux{opts: opts, parsers: make(map[string]*Parser)}, nil
}

// Feed passes rec to its host's parser.
func (d *Demux) Feed(dst []report.Report, rec kmsg.Record) ([]report.Report, error) {
	host := rec.Host
	if host == "" {
		host = d.lastHost
	}
	d.lastHost = host
	p, ok := d.parsers[host]
	if !ok && host != "" && len(d.order) == 1 && d.order[0] == "" {
		// The first host named after host-less records (a paste that
		// starts with dmesg lines and goes on with syslog ones): they
		// were this host's.
		p, ok = d.parsers[""], true
		delete(d.parsers, "")
		d.parsers[host], d.order[0] = p, host
	}
	if !ok {
		if len(d.parsers) >= maxHosts {
			return dst, fmt.Errorf("oomparse: more than %d hosts in one stream", maxHosts)
		}
		opts := d.opts[:len(d.opts):len(d.opts)]
		if host != "" {
			opts = append(opts, WithHost(host))
		}
		var err error
		if p, err = New(opts...); err != nil {
			return dst, err
		}
		d.parsers[host] = p
		d.order = append(d.order, host)
	}
	return p.Feed(dst, rec), nil
}

// Release releases the finished reports of every host's parser (see
// [Parser.Release]), hosts in order of first appearance.
func (d *Demux) Release(dst []report.Report) []report.Report {
	for _, h := range d.order {
		dst = d.parsers[h].Release(dst)
	}
	return dst
}

// Flush flushes every host's parser, hosts in order of first appearance.
func (d *Demux) Flush(dst []report.Report) []report.Report {
	for _, h := range d.order {
		dst = d.parsers[h].Flush(dst)
	}
	return dst
}

// ParseAll reads src to the end and returns every report in it, in order
// of completion. Reports are returned with the source's error, if any: what
// was read before the error is not lost.
func ParseAll(src RecordSource, opts ...Option) ([]report.Report, error) {
	d, err := NewDemux(opts...)
	if err != nil {
		return nil, err
	}
	var out []report.Report
	for src.Scan() {
		if out, err = d.Feed(out, src.Record()); err != nil {
			return d.Flush(out), err
		}
	}
	out = d.Flush(out)
	if err := src.Err(); err != nil {
		return out, fmt.Errorf("oomparse: reading records: %w", err)
	}
	return out, nil
}
