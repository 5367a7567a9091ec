package etcdstore

import (
	"bytes"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
)

// TestCodec: codec writes etcd's messages as gRPC's proto codec does, reads
// them back whole (what the message held before is gone, and nothing it
// keeps shares the buffer it was read from), and passes any other message
// to gRPC's codec.
func TestCodec(t *testing.T) {
	std := encoding.GetCodecV2(proto.Name)
	msgs := []any{
		&pb.RangeRequest{Key: []byte("leases/job"), KeysOnly: true},
		&pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("k"), Target: pb.Compare_MOD, TargetUnion: &pb.Compare_ModRevision{ModRevision: 42}}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}}}},
		},
		&pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 7}, Kvs: []*mvccpb.KeyValue{{Key: []byte("k"), Value: []byte("record"), ModRevision: 5}}, Count: 1},
		&healthpb.HealthCheckRequest{Service: "not etcd's"},
	}
	for _, m := range msgs {
		got, err := codec{}.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%T): %v", m, err)
		}
		want, err := std.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Materialize(), want.Materialize()) {
			t.Errorf("Marshal(%T) = %x; gRPC's codec: %x", m, got.Materialize(), want.Materialize())
		}
	}

	resp := msgs[2].(*pb.RangeResponse)
	data, _ := codec{}.Marshal(resp)
	wire := data.Materialize()
	buf := append([]byte(nil), wire...)
	into := &pb.RangeResponse{More: true, Kvs: []*mvccpb.KeyValue{{Key: []byte("old")}}}
	if err := (codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(buf)}, into); err != nil {
		t.Fatal(err)
	}
	if into.More || len(into.Kvs) != 1 || string(into.Kvs[0].Value) != "record" || into.Header.Revision != 7 {
		t.Errorf("Unmarshal = %v; want %v", into, resp)
	}
	clear(buf)
	if string(into.Kvs[0].Key) != "k" || string(into.Kvs[0].Value) != "record" {
		t.Errorf("after the buffer was overwritten, the message holds %q=%q: it shares the buffer", into.Kvs[0].Key, into.Kvs[0].Value)
	}

	s := &healthpb.HealthCheckRequest{}
	data, _ = codec{}.Marshal(&healthpb.HealthCheckRequest{Service: "not etcd's"})
	if err := (codec{}).Unmarshal(data, s); err != nil || s.Service != "not etcd's" {
		t.Errorf("Unmarshal of another message: %v, %v", s, err)
	}
	if (codec{}).Name() != proto.Name {
		t.Errorf("Name() = %q, want %q", codec{}.Name(), proto.Name)
	}
}
