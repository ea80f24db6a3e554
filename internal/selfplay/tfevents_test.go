package selfplay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// decodedEvent is what readEvents recovers from an event file.
type decodedEvent struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Values      map[string]float32
}

// readEvents parses a TFRecord file of Event protobufs, checking both CRCs.
func readEvents(path string) ([]decodedEvent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var events []decodedEvent
	for len(data) > 0 {
		if len(data) < 12 {
			return nil, errors.New("short header")
		}
		n := binary.LittleEndian.Uint64(data[:8])
		if maskedCRC(data[:8]) != binary.LittleEndian.Uint32(data[8:12]) {
			return nil, errors.New("length crc mismatch")
		}
		if uint64(len(data)) < 16+n {
			return nil, errors.New("short record")
		}
		payload := data[12 : 12+n]
		if maskedCRC(payload) != binary.LittleEndian.Uint32(data[12+n:16+n]) {
			return nil, errors.New("payload crc mismatch")
		}
		ev, err := decodeEvent(payload)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
		data = data[16+n:]
	}
	return events, nil
}

// protoFields walks one protobuf message, calling fn per field.
func protoFields(b []byte, fn func(field, wire int, varint uint64, fixed []byte, bytes []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad key")
		}
		b = b[n:]
		field, wire := int(key>>3), int(key&7)
		switch wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
			if err := fn(field, wire, v, nil, nil); err != nil {
				return err
			}
		case 1, 5:
			size := 8
			if wire == 5 {
				size = 4
			}
			if len(b) < size {
				return errors.New("short fixed")
			}
			if err := fn(field, wire, 0, b[:size], nil); err != nil {
				return err
			}
			b = b[size:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errors.New("bad length")
			}
			if err := fn(field, wire, 0, nil, b[n:n+int(l)]); err != nil {
				return err
			}
			b = b[n+int(l):]
		default:
			return fmt.Errorf("wire type %d", wire)
		}
	}
	return nil
}

func decodeEvent(b []byte) (decodedEvent, error) {
	ev := decodedEvent{Values: map[string]float32{}}
	err := protoFields(b, func(field, wire int, v uint64, fixed, bytes []byte) error {
		switch field {
		case 1:
			ev.WallTime = math.Float64frombits(binary.LittleEndian.Uint64(fixed))
		case 2:
			ev.Step = int64(v)
		case 3:
			ev.FileVersion = string(bytes)
		case 5:
			return protoFields(bytes, func(field, wire int, _ uint64, _ []byte, value []byte) error {
				var tag string
				var simple float32
				err := protoFields(value, func(field, wire int, _ uint64, fixed, bytes []byte) error {
					switch field {
					case 1:
						tag = string(bytes)
					case 2:
						simple = math.Float32frombits(binary.LittleEndian.Uint32(fixed))
					}
					return nil
				})
				ev.Values[tag] = simple
				return err
			})
		}
		return nil
	})
	return ev, err
}

func TestEventWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := NewEventWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteScalars(3, Metrics{{"solver_reward", 0.625}, {"time/solve", 12.5}}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteScalars(4, Metrics{{"solver_reward", -1}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("event files: %v", files)
	}
	events, err := readEvents(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[0].FileVersion != "brain.Event:2" {
		t.Fatalf("events: %+v", events)
	}
	if e := events[1]; e.Step != 3 || e.Values["solver_reward"] != 0.625 || e.Values["time/solve"] != 12.5 || e.WallTime < 1e9 {
		t.Fatalf("event 1: %+v", e)
	}
	if e := events[2]; e.Step != 4 || e.Values["solver_reward"] != -1 {
		t.Fatalf("event 2: %+v", e)
	}
}

// TestMaskedCRC pins the checksum to TFRecord's: CRC-32C("a") is
// 0xc1d04330, masked ((c>>15)|(c<<17)) + 0xa282ead8.
func TestMaskedCRC(t *testing.T) {
	c := uint32(0xc1d04330)
	want := (c>>15 | c<<17) + 0xa282ead8
	if got := maskedCRC([]byte("a")); got != want {
		t.Fatalf("maskedCRC(a) = %#x, want %#x", got, want)
	}
}
