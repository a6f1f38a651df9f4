package stream

import (
	"fmt"
	"sort"

	"github.com/IBM/sarama"
)

// recordless reads partition p from offset from, as read_committed does,
// and returns the first offset at or after from that may hold a record this
// consumer reads: offsets taken only by transaction markers and aborted
// transactions lie before it. A claim whose partition ends with a marker
// is never given a record past it; this tells it the log's end is reached
// (the stored offset, lag, rebuild and round results need it).
func (c *Consumer) recordless(p int32, from int64) (int64, error) {
	broker, err := c.client.Leader(Topic, p)
	if err != nil {
		return from, err
	}
	req := &sarama.FetchRequest{MinBytes: 1, Version: 5, Isolation: sarama.ReadCommitted, MaxBytes: 1 << 20}
	if c.version().IsAtLeast(sarama.V2_1_0_0) {
		req.Version = 10 // zstd batches need 10
		req.SessionID, req.SessionEpoch = 0, -1
	}
	req.AddBlock(Topic, p, from, 1<<20, -1)
	res, err := broker.Fetch(req)
	if err != nil {
		return from, err
	}
	b := res.GetBlock(Topic, p)
	if b == nil {
		return from, fmt.Errorf("fetch %s/%d: no answer for the partition", Topic, p)
	}
	if b.Err != sarama.ErrNoError {
		return from, b.Err
	}
	// Kafka's read_committed rule: a producer's transactional batches from
	// an aborted transaction's first offset until its marker are skipped.
	abortedTxns := append([]*sarama.AbortedTransaction(nil), b.AbortedTransactions...)
	sort.Slice(abortedTxns, func(i, j int) bool { return abortedTxns[i].FirstOffset < abortedTxns[j].FirstOffset })
	aborting := map[int64]bool{}
	next := from
	for _, rs := range b.RecordsSet {
		rb := rs.RecordBatch
		if rb == nil || rb.PartialTrailingRecord {
			return next, nil // an old message set, or cut short: cannot tell
		}
		last := rb.FirstOffset + int64(rb.LastOffsetDelta)
		for len(abortedTxns) > 0 && abortedTxns[0].FirstOffset <= last {
			aborting[abortedTxns[0].ProducerID] = true
			abortedTxns = abortedTxns[1:]
		}
		switch {
		case last < next:
			continue
		case rb.Control:
			delete(aborting, rb.ProducerID) // the marker ends its transaction
		case rb.IsTransactional && aborting[rb.ProducerID]:
		default:
			return next, nil // a record this consumer reads
		}
		next = last + 1
	}
	return next, nil
}

// version is the Kafka protocol version the clients speak.
func (c *Consumer) version() sarama.KafkaVersion {
	v, err := sarama.ParseKafkaVersion(c.cfg.Version)
	if c.cfg.Version == "" || err != nil {
		v, _ = sarama.ParseKafkaVersion(DefaultVersion)
	}
	return v
}
