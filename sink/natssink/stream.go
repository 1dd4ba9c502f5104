package natssink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the default stream, and StreamSubjects the subjects it
// captures.
const (
	StreamName     = "OOMSCOPE"
	StreamSubjects = "oomscope.v1.>"
)

// StreamConfig is the stream definition [EnsureStream] creates: name,
// subjects [StreamSubjects], file storage, limits retention discarding the
// oldest, the given duplicate window and max age (0: no age limit) and
// replica count.
func StreamConfig(name string, duplicates, maxAge time.Duration, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: "oomscope OOM-kill reports (schema oomscope.report/v1)",
		Subjects:    []string{StreamSubjects},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Duplicates:  duplicates,
		MaxAge:      maxAge,
		Replicas:    max(replicas, 1),
	}
}

// EnsureStream creates the stream want describes, or updates an existing
// stream of that name: it adds want's subjects to the ones it has and sets
// its duplicate window and max age (and replicas), leaving every other
// setting an operator chose as it is. Storage cannot change: a stream on
// memory storage stays so.
func EnsureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created meanwhile by another node: update it as below.
			return EnsureStream(ctx, js, want)
		}
		if err != nil {
			return nil, fmt.Errorf("natssink: creating stream %s: %w", want.Name, err)
		}
		return s.CachedInfo(), nil
	case err != nil:
		return nil, fmt.Errorf("natssink: looking up stream %s: %w", want.Name, err)
	}
	cfg := s.CachedInfo().Config
	changed := false
	for _, subj := range want.Subjects {
		if !slices.Contains(cfg.Subjects, subj) {
			cfg.Subjects = append(cfg.Subjects, subj)
			changed = true
		}
	}
	if cfg.Duplicates != want.Duplicates || cfg.MaxAge != want.MaxAge || cfg.Replicas != want.Replicas {
		cfg.Duplicates, cfg.MaxAge, cfg.Replicas = want.Duplicates, want.MaxAge, want.Replicas
		changed = true
	}
	if !changed {
		return s.CachedInfo(), nil
	}
	s, err = js.UpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("natssink: updating stream %s: %w", want.Name, err)
	}
	return s.CachedInfo(), nil
}
