package testenv_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/internal/testenv"
)

// produce sends n records to topic with acks from all in-sync replicas and
// returns the first error.
func produce(t *testing.T, addrs []string, cfg *sarama.Config, topic string, n int) error {
	t.Helper()
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i := range n {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder("v")})
	}
	err = p.SendMessages(msgs)
	var errs sarama.ProducerErrors
	if errors.As(err, &errs) && len(errs) > 0 {
		return errs[0].Err
	}
	return err
}

// count is the number of records in topic (end minus start offsets).
func count(t *testing.T, k *testenv.ApacheKafka, topic string) int64 {
	t.Helper()
	c, err := sarama.NewClient(k.Addrs(), k.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		hi, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		lo, err := c.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		n += hi - lo
	}
	return n
}

// One node: topics are not created by a producer (as in production), a
// created one takes records, and a stopped and restarted node keeps them.
func TestApacheKafkaSingleNode(t *testing.T) {
	k := testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{})
	if err := produce(t, k.Addrs(), k.SaramaConfig(), "absent", 1); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("produce to a topic nobody created: %v, want UNKNOWN_TOPIC_OR_PARTITION (auto-creation is off)", err)
	}
	k.CreateTopics(t, 2, "t1")
	if err := produce(t, k.Addrs(), k.SaramaConfig(), "t1", 100); err != nil {
		t.Fatal(err)
	}
	k.Stop(0)
	began := time.Now()
	k.Start(0)
	t.Logf("restart took %v", time.Since(began))
	if n := count(t, k, "t1"); n != 100 {
		t.Fatalf("after a restart the topic holds %d records, want 100", n)
	}
}

// SASL SCRAM-SHA-512 over TLS with ACLs: the super user may do anything, a
// new user authenticates but may write only where an ACL lets it, and a
// wrong password is refused.
func TestApacheKafkaSASLWithACLs(t *testing.T) {
	k := testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{SASL: true, ACLs: true})
	k.CreateTopics(t, 1, "t1")
	k.AddUser(t, "player", "pw-1")
	// The idempotent producer asks for a producer id first, which needs
	// Write on some topic (or IdempotentWrite on the cluster).
	if err := produce(t, k.Addrs(), k.SaramaConfigAs("player", "pw-1"), "t1", 1); !errors.Is(err, sarama.ErrClusterAuthorizationFailed) {
		t.Fatalf("produce without an ACL: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	err := k.Admin().CreateACLs([]*sarama.ResourceAcls{{
		Resource: sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: "t1", ResourcePatternType: sarama.AclPatternLiteral},
		Acls:     []*sarama.Acl{{Principal: "User:player", Host: "*", Operation: sarama.AclOperationWrite, PermissionType: sarama.AclPermissionAllow}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() string {
		// Write on a topic is enough for an idempotent producer (KIP-679).
		if err := produce(t, k.Addrs(), k.SaramaConfigAs("player", "pw-1"), "t1", 3); err != nil {
			return err.Error()
		}
		return ""
	})
	if n := count(t, k, "t1"); n != 3 {
		t.Fatalf("topic holds %d records, want 3", n)
	}
	// The topic readers reach a secured cluster as its super user.
	if msgs := testenv.TopicMessages(t, k.Addrs(), "t1"); len(msgs) != 3 {
		t.Fatalf("TopicMessages read %d records, want 3", len(msgs))
	}
	if ids := testenv.ProducerIDs(t, k.Addrs(), nil, "t1"); len(ids) != 1 {
		t.Fatalf("producer ids %v, want the one idempotent producer's", ids)
	}
	bad := k.SaramaConfigAs("player", "wrong")
	if _, err := sarama.NewClient(k.Addrs(), bad); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	env := k.Env()
	if env["KAFKA_SASL_MECHANISM"] != "scram-sha-512" || env["KAFKA_SSL"] != "true" || env["KAFKA_SSL_CA_PATH"] != k.PKI().CAFile {
		t.Fatalf("Env() = %v", env)
	}
}

// Three nodes: replication factor 3 and min.insync.replicas 2 by default;
// with the leader killed a new one takes over and acks=all writes go on;
// with two nodes down writes are refused (NOT_ENOUGH_REPLICAS), and once a
// node is back they succeed again.
func TestApacheKafkaThreeNodes(t *testing.T) {
	k := testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{Nodes: 3,
		BrokerConfig: map[string]string{"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}})
	k.CreateTopics(t, 1, "t1")
	if isr := k.InSync(t, "t1", 0); len(isr) != 3 {
		t.Fatalf("in-sync replicas %v, want 3", isr)
	}
	cfg := k.SaramaConfig()
	if err := produce(t, k.Addrs(), cfg, "t1", 10); err != nil {
		t.Fatal(err)
	}
	leader := k.Leader(t, "t1", 0)
	k.Kill(leader)
	began := time.Now()
	testenv.Eventually(t, 60*time.Second, func() string {
		if err := produce(t, k.Addrs(), k.SaramaConfig(), "t1", 10); err != nil {
			return err.Error()
		}
		return ""
	})
	t.Logf("writes resumed %v after the leader (node %d) was killed", time.Since(began), leader)
	// A producer that has its id: with two nodes down the controller
	// quorum is lost too, so a new one could not get one.
	cfg = k.SaramaConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 1
	p, err := sarama.NewSyncProducer(k.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	other := (leader + 1) % 3
	if k.Leader(t, "t1", 0) == other {
		other = (leader + 2) % 3
	}
	k.Stop(other)
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "t1", Value: sarama.StringEncoder("v")}); !errors.Is(err, sarama.ErrNotEnoughReplicas) && !errors.Is(err, sarama.ErrNotEnoughReplicasAfterAppend) {
		t.Fatalf("produce with one of three nodes up: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	k.Start(leader)
	testenv.Eventually(t, 60*time.Second, func() string {
		if err := produce(t, k.Addrs(), k.SaramaConfig(), "t1", 5); err != nil {
			return err.Error()
		}
		return ""
	})
	if n := count(t, k, "t1"); n < 25 {
		t.Fatalf("topic holds %d records, want at least 25", n)
	}
}
