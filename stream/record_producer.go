package stream

// TEMPORARY: the AsyncProducer branch (issue 11, producer part) brings
// Record and Producer.Produce/Partitions. Until it is merged, facts go
// through this small adapter over sarama's SyncProducer (idempotent,
// acks=all). Delete this file when merging and pass the new *Producer to
// NewFacts instead.

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// Record is one record to produce.
type Record struct {
	Key       string // partitioning key (player id); "" with Partition >= 0
	Value     []byte
	Partition int32 // -1: chosen from Key (CRC32, like kcat); >= 0: exactly this partition
	Headers   map[string]string
}

// SyncRecords produces Records with a sarama SyncProducer.
type SyncRecords struct {
	client sarama.Client
	prod   sarama.SyncProducer
}

// explicitPartition marks a message whose Partition was chosen by the caller.
type explicitPartition struct{}

// recordPartitioner hashes keys with CRC32 (like kcat) unless the record
// names its partition.
type recordPartitioner struct{ hash sarama.Partitioner }

func (p recordPartitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if _, ok := m.Metadata.(explicitPartition); ok {
		if m.Partition < 0 || m.Partition >= n {
			return 0, fmt.Errorf("partition %d out of range (topic has %d)", m.Partition, n)
		}
		return m.Partition, nil
	}
	return p.hash.Partition(m, n)
}

func (p recordPartitioner) RequiresConsistency() bool { return true }

// NewSyncRecords connects a record producer.
func NewSyncRecords(c Config) (*SyncRecords, error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = func(topic string) sarama.Partitioner {
		return recordPartitioner{hash: sarama.NewConsistentCRCHashPartitioner(topic)}
	}
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka client %v: %w", c.Brokers, err)
	}
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &SyncRecords{client: client, prod: prod}, nil
}

// Produce returns after Kafka acknowledged every record (or ctx ended: the
// records may still be written then).
func (s *SyncRecords) Produce(ctx context.Context, topic string, recs ...Record) error {
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(r.Value)}
		if r.Key != "" {
			m.Key = sarama.StringEncoder(r.Key)
		}
		if r.Partition >= 0 {
			m.Partition, m.Metadata = r.Partition, explicitPartition{}
		}
		for k, v := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		msgs[i] = m
	}
	done := make(chan error, 1)
	go func() { done <- s.prod.SendMessages(msgs) }()
	select {
	case err := <-done:
		if err != nil {
			var pe sarama.ProducerErrors
			if errors.As(err, &pe) && len(pe) > 0 {
				err = pe[0].Err
			}
			return fmt.Errorf("kafka did not take %d records: %w", len(recs), err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka did not acknowledge in time: %w", ctx.Err())
	}
}

// Partitions is the number of partitions of topic.
func (s *SyncRecords) Partitions(topic string) (int32, error) {
	ps, err := s.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	return int32(len(ps)), nil
}

// Close closes the producer and its client.
func (s *SyncRecords) Close() error {
	err := s.prod.Close()
	if cerr := s.client.Close(); err == nil && !errors.Is(cerr, sarama.ErrClosedClient) {
		err = cerr
	}
	return err
}
