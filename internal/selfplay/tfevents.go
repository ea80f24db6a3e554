package selfplay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"time"
)

// TensorBoard reads "events.out.tfevents.*" files: a sequence of TFRecords
// (length, masked CRC-32C of the length, payload, masked CRC-32C of the
// payload), each payload a serialized tensorflow.Event protobuf. The few
// protobuf fields needed are encoded by hand:
//
//	Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//	Summary { repeated Value value = 1; }
//	Value   { string tag = 1; float simple_value = 2; }

// EventWriter appends scalar summaries to a TensorBoard event file.
type EventWriter struct {
	f *os.File
}

// NewEventWriter creates a new event file in dir. Each process writes its
// own file, so a resumed run never appends to a file torn by a crash.
func NewEventWriter(dir string) (*EventWriter, error) {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	base := fmt.Sprintf("events.out.tfevents.%d.%s.%d", time.Now().Unix(), host, os.Getpid())
	var f *os.File
	var err error
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s.%d", base, i) // a second writer within the same second
		}
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
		if !errors.Is(err, os.ErrExist) || i == 100 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	w := &EventWriter{f: f}
	if err := w.writeRecord(encodeEvent(nowSeconds(), 0, "brain.Event:2", nil)); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// WriteScalars appends one event holding every metric at step.
func (w *EventWriter) WriteScalars(step int, metrics Metrics) error {
	return w.writeRecord(encodeEvent(nowSeconds(), int64(step), "", metrics))
}

// Close flushes and closes the file.
func (w *EventWriter) Close() error {
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return fmt.Errorf("tensorboard: %w", err)
	}
	return w.f.Close()
}

func (w *EventWriter) writeRecord(payload []byte) error {
	if _, err := w.f.Write(tfRecord(payload)); err != nil {
		return fmt.Errorf("tensorboard: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("tensorboard: %w", err)
	}
	return nil
}

func nowSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's checksum: CRC-32C rotated and offset so that
// CRCs of data containing CRCs stay well distributed.
func maskedCRC(data []byte) uint32 {
	c := crc32.Checksum(data, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// tfRecord frames one payload; the frame is written with a single call.
func tfRecord(payload []byte) []byte {
	rec := make([]byte, 0, 16+len(payload))
	rec = binary.LittleEndian.AppendUint64(rec, uint64(len(payload)))
	rec = binary.LittleEndian.AppendUint32(rec, maskedCRC(rec[:8]))
	rec = append(rec, payload...)
	return binary.LittleEndian.AppendUint32(rec, maskedCRC(payload))
}

func encodeEvent(wallTime float64, step int64, fileVersion string, metrics Metrics) []byte {
	var ev []byte
	ev = protoTag(ev, 1, 1) // wall_time, 64-bit
	ev = binary.LittleEndian.AppendUint64(ev, math.Float64bits(wallTime))
	if step != 0 {
		ev = protoTag(ev, 2, 0) // step, varint
		ev = binary.AppendUvarint(ev, uint64(step))
	}
	if fileVersion != "" {
		ev = protoBytes(ev, 3, []byte(fileVersion))
	}
	if len(metrics) > 0 {
		var summary []byte
		for _, m := range metrics {
			var v []byte
			v = protoBytes(v, 1, []byte(m.Name))
			v = protoTag(v, 2, 5) // simple_value, 32-bit
			v = binary.LittleEndian.AppendUint32(v, math.Float32bits(float32(m.Value)))
			summary = protoBytes(summary, 1, v)
		}
		ev = protoBytes(ev, 5, summary)
	}
	return ev
}

func protoTag(b []byte, field, wireType int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wireType))
}

func protoBytes(b []byte, field int, data []byte) []byte {
	b = protoTag(b, field, 2)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}
