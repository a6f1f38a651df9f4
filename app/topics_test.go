package app_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"sigs.k8s.io/yaml"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// manifestACLs are the ACLs deploy/kubernetes/strimzi/kafkauser.yaml grants
// its user, as kfake ACLs, and the user's name.
func manifestACLs(t *testing.T) (string, []kfake.ACL) {
	t.Helper()
	b, err := os.ReadFile("../deploy/kubernetes/strimzi/kafkauser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var u struct {
		Metadata struct{ Name string }
		Spec     struct {
			Authorization struct {
				ACLs []struct {
					Resource   struct{ Type, Name, PatternType string }
					Operations []string
					Host       string
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &u); err != nil {
		t.Fatal(err)
	}
	var acls []kfake.ACL
	for _, a := range u.Spec.Authorization.ACLs {
		rt, err := kmsg.ParseACLResourceType(a.Resource.Type)
		if err != nil {
			t.Fatal(err)
		}
		name := a.Resource.Name
		if rt == kmsg.ACLResourceTypeCluster {
			name = "kafka-cluster"
		}
		pattern := kmsg.ACLResourcePatternTypeLiteral
		if a.Resource.PatternType == "prefix" {
			pattern = kmsg.ACLResourcePatternTypePrefixed
		}
		for _, op := range a.Operations {
			o, err := kmsg.ParseACLOperation(op)
			if err != nil {
				t.Fatal(err)
			}
			acls = append(acls, kfake.ACL{Resource: rt, Name: name, Pattern: pattern, Operation: o, Allow: true, Host: a.Host})
		}
	}
	if len(acls) == 0 {
		t.Fatal("no ACLs in kafkauser.yaml")
	}
	return u.Metadata.Name, acls
}

// aclKafka is kfake with SASL and ACLs: a superuser (the operator) and the
// manifest's user with exactly the manifest's ACLs. topics are created as
// the Strimzi Topic Operator would, from the KafkaTopics.
func aclKafka(t *testing.T, topics ...string) (*testenv.Kafka, map[string]string) {
	t.Helper()
	user, acls := manifestACLs(t)
	k := testenv.StartKafkaWith(t, 3, []kfake.Opt{
		kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-512", "operator", "operator-pass-1"),
		kfake.User("SCRAM-SHA-512", user, kafkaPassword, acls...),
	})
	for _, name := range topics {
		parts, cfg := int32(3), map[string]string{"min.insync.replicas": "1"}
		if name == stream.CheckpointTopic {
			parts, cfg["cleanup.policy"] = 1, "compact"
		}
		if err := k.Cluster.CreateTopic(name, parts, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return k, map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_USERNAME": user, "KAFKA_PASSWORD": kafkaPassword}
}

// The app starts and plays with exactly the ACLs the Strimzi KafkaUser
// grants (no Create), the topics being the KafkaTopics: it only asks
// whether they exist, and writes checkpoints.
func TestPlaysWithManifestACLs(t *testing.T) {
	k, env := aclKafka(t, stream.Topic, stream.CheckpointTopic)
	m := admInstance(t, testenv.StartRedis(t), k, overlay(env, map[string]string{"CHECKPOINT_INTERVAL": "200ms"}), nil)
	if code, body := readyz(t, m.URL()); code != 200 {
		t.Fatalf("readyz %d %v", code, body)
	}
	a, b := join(t, m.URL(), "ann"), join(t, m.URL(), "bob")
	tapN(t, m.URL(), a, 5)
	tapN(t, m.URL(), b, 3)
	waitTotals(t, m.URL(), map[*joined]int64{&a: 5, &b: 3})
	testenv.Eventually(t, 10*time.Second, func() string {
		if p := k.Cluster.PartitionInfo(stream.CheckpointTopic, 0); p == nil || p.HighWatermark == 0 {
			return "no checkpoint written"
		}
		return ""
	})
}

// With the manifest's ACLs (no Create) and game-checkpoints missing, the
// start fails at once naming the topic and the right it lacks.
func TestMissingTopicWithoutCreateRightFailsAtStart(t *testing.T) {
	k, env := aclKafka(t, stream.Topic)
	r := testenv.StartRedis(t)
	startFailsWith(t, overlay(map[string]string{
		"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "REDIS_URL": r.URL(),
		"KAFKA_BROKERS": strings.Join(k.Addrs(), ","), "SESSION_SECRET": "test-secret-0123456789",
	}, env), []string{"kafka topic game-checkpoints does not exist", "no Create right on topic game-checkpoints", "partitions", "cleanup.policy=compact"}, kafkaPassword)
}

// On a broker without the topics (one that would auto-create them with its
// defaults), tapwars creates both with settings of its own.
func TestCreatesTopicsWithItsOwnSettings(t *testing.T) {
	k := testenv.StartKafka(t, 2) // kfake would auto-create topics with 2 partitions
	m := admInstance(t, testenv.StartRedis(t), k, map[string]string{
		"KAFKA_PARTITIONS": "5", "KAFKA_RETENTION": "48h", "KAFKA_MIN_INSYNC_REPLICAS": "1"}, nil)
	a := join(t, m.URL(), "ann")
	tapN(t, m.URL(), a, 2)
	waitTotals(t, m.URL(), map[*joined]int64{&a: 2})
	if n := len(k.Cluster.PartitionInfos(stream.Topic)); n != 5 {
		t.Errorf("%s has %d partitions, want 5 (KAFKA_PARTITIONS)", stream.Topic, n)
	}
	want := map[string]map[string]string{
		stream.Topic:           {"cleanup.policy": "delete", "retention.ms": "172800000", "min.insync.replicas": "1"},
		stream.CheckpointTopic: {"cleanup.policy": "compact", "min.insync.replicas": "1"},
	}
	for topic, cfg := range want {
		info := k.Cluster.TopicInfo(topic)
		if info == nil {
			t.Fatalf("no topic %s", topic)
		}
		for key, v := range cfg {
			if got := info.Configs[key]; got == nil || *got != v {
				t.Errorf("%s %s = %v, want %s", topic, key, got, v)
			}
		}
	}
	if n := len(k.Cluster.PartitionInfos(stream.CheckpointTopic)); n != 1 {
		t.Errorf("%s has %d partitions, want 1", stream.CheckpointTopic, n)
	}
}
