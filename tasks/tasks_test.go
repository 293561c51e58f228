package tasks

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleDeploy() Deploy {
	return Deploy{
		JobID:           "job-123",
		Framework:       "foundry",
		Network:         "local",
		Project:         ProjectRef{Upload: strings.Repeat("ab", 32)},
		Contract:        "src/Counter.sol:Counter",
		ConstructorArgs: []string{"1", "two"},
		EnqueuedAt:      time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
	}
}

func TestNewDeployRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		in      Deploy
		version int
		// written is the version the payload must carry: the oldest that holds it.
		written int
	}{
		{"no version set", sampleDeploy(), 0, 1},
		{"other version overwritten", sampleDeploy(), 7, 1},
		{"path project, script", Deploy{JobID: "j", Framework: "foundry", Network: "fork", Project: ProjectRef{Path: "examples/counter"}, Script: "script/Deploy.s.sol"}, 0, 1},
		{"script with arguments", Deploy{JobID: "j", Framework: "foundry", Network: "local", Project: ProjectRef{Path: "p"}, Script: "script/D.s.sol", Sig: "run(int256)", Args: []string{"-5"}}, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Version = tt.version
			task, err := NewDeploy(in)
			if err != nil {
				t.Fatalf("NewDeploy: %v", err)
			}
			if task.Type() != TypeDeploy {
				t.Errorf("Type = %q, want %q", task.Type(), TypeDeploy)
			}
			var raw map[string]any
			if err := json.Unmarshal(task.Payload(), &raw); err != nil {
				t.Fatal(err)
			}
			if raw["version"] != float64(tt.written) {
				t.Errorf("payload version = %v, want %d", raw["version"], tt.written)
			}
			got, err := DecodeDeploy(task.Payload())
			if err != nil {
				t.Fatalf("DecodeDeploy: %v", err)
			}
			want := tt.in
			want.Version = tt.written
			if !got.EnqueuedAt.Equal(want.EnqueuedAt) {
				t.Errorf("EnqueuedAt = %v, want %v", got.EnqueuedAt, want.EnqueuedAt)
			}
			got.EnqueuedAt, want.EnqueuedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestNewDeployDoesNotChangeCaller(t *testing.T) {
	d := sampleDeploy()
	if _, err := NewDeploy(d); err != nil {
		t.Fatal(err)
	}
	if d.Version != 0 {
		t.Errorf("NewDeploy set the caller's Version to %d", d.Version)
	}
}

func TestDecodeDeployRefused(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		version bool // the error is ErrPayloadVersion
	}{
		{"version 3", `{"version":3,"job_id":"j","framework":"foundry"}`, true},
		{"missing version", `{"job_id":"j","framework":"foundry"}`, true},
		{"version 0", `{"version":0,"job_id":"j"}`, true},
		{"version -1", `{"version":-1,"job_id":"j"}`, true},
		{"not JSON", `not json`, false},
		{"version not a number", `{"version":"1","job_id":"j"}`, false},
		{"no job id", `{"version":1,"framework":"foundry"}`, false},
		{"bad field type", `{"version":1,"job_id":"j","constructor_args":"x"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeDeploy([]byte(tt.payload))
			if err == nil {
				t.Fatalf("DecodeDeploy = %+v, want an error", got)
			}
			if errors.Is(err, ErrPayloadVersion) != tt.version {
				t.Errorf("errors.Is(err, ErrPayloadVersion) = %v, want %v (err %v)", !tt.version, tt.version, err)
			}
			if !reflect.DeepEqual(got, Deploy{}) {
				t.Errorf("a payload came with the error: %+v", got)
			}
		})
	}
}

func TestDecodeDeployIgnoresUnknownFields(t *testing.T) {
	got, err := DecodeDeploy([]byte(`{"version":1,"job_id":"j","new_field":true}`))
	if err != nil || got.JobID != "j" || got.Version != 1 {
		t.Errorf("DecodeDeploy = %+v, %v", got, err)
	}
}
