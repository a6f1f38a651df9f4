package app_test

import (
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"sigs.k8s.io/yaml"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// manifestACL is one ACL entry of deploy/kubernetes/strimzi/kafkauser.yaml.
type manifestACL struct {
	Resource   struct{ Type, Name, PatternType string }
	Operations []string
	Host       string
}

// manifestUser is the KafkaUser's name and ACLs.
func manifestUser(t *testing.T) (string, []manifestACL) {
	t.Helper()
	b, err := os.ReadFile("../deploy/kubernetes/strimzi/kafkauser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var u struct {
		Metadata struct{ Name string }
		Spec     struct {
			Authorization struct{ ACLs []manifestACL }
		}
	}
	if err := yaml.Unmarshal(b, &u); err != nil {
		t.Fatal(err)
	}
	if len(u.Spec.Authorization.ACLs) == 0 {
		t.Fatal("no ACLs in kafkauser.yaml")
	}
	return u.Metadata.Name, u.Spec.Authorization.ACLs
}

// kfakeACLs are the manifest's ACLs for kfake.
func kfakeACLs(t *testing.T, acls []manifestACL) []kfake.ACL {
	t.Helper()
	var out []kfake.ACL
	for _, a := range acls {
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
			out = append(out, kfake.ACL{Resource: rt, Name: name, Pattern: pattern, Operation: o, Allow: true, Host: a.Host})
		}
	}
	return out
}

// allowManifestACLs grants user the manifest's ACLs on Apache Kafka.
func allowManifestACLs(t *testing.T, k *testenv.ApacheKafka, user string, acls []manifestACL) {
	t.Helper()
	for _, a := range acls {
		res := sarama.Resource{ResourceName: a.Resource.Name, ResourcePatternType: sarama.AclPatternLiteral}
		switch a.Resource.Type {
		case "topic":
			res.ResourceType = sarama.AclResourceTopic
		case "group":
			res.ResourceType = sarama.AclResourceGroup
		case "cluster":
			res.ResourceType, res.ResourceName = sarama.AclResourceCluster, "kafka-cluster"
		default:
			t.Fatalf("resource type %q", a.Resource.Type)
		}
		if a.Resource.PatternType == "prefix" {
			res.ResourcePatternType = sarama.AclPatternPrefixed
		}
		var ops []sarama.AclOperation
		for _, op := range a.Operations {
			var o sarama.AclOperation
			if err := o.UnmarshalText([]byte(op)); err != nil {
				t.Fatal(err)
			}
			ops = append(ops, o)
		}
		k.Allow(t, "User:"+user, res, ops...)
	}
}

// aclBroker is a broker of kind with SASL and ACLs: a super user (the
// operator) and the manifest's user with exactly the manifest's ACLs, and
// tapwars' settings as that user. topics are created as the Strimzi Topic
// Operator would, from the KafkaTopics.
func aclBroker(t *testing.T, kind string, topics ...string) (testenv.Broker, map[string]string) {
	t.Helper()
	user, acls := manifestUser(t)
	detail := func(name string) *sarama.TopicDetail {
		if name == stream.CheckpointTopic {
			compact := "compact"
			return &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1, ConfigEntries: map[string]*string{"cleanup.policy": &compact}}
		}
		return &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: -1}
	}
	if kind == "apache" {
		k := testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{SASL: true, ACLs: true})
		k.AddUser(t, user, kafkaPassword)
		allowManifestACLs(t, k, user, acls)
		for _, name := range topics {
			if err := k.Admin().CreateTopic(name, detail(name), false); err != nil {
				t.Fatal(err)
			}
		}
		return k, k.EnvAs(user, kafkaPassword)
	}
	k := testenv.StartKafkaWith(t, 3, []kfake.Opt{
		kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-512", "operator", "operator-pass-1"),
		kfake.User("SCRAM-SHA-512", user, kafkaPassword, kfakeACLs(t, acls)...),
	})
	for _, name := range topics {
		d := detail(name)
		cfg := map[string]string{}
		for key, v := range d.ConfigEntries {
			cfg[key] = *v
		}
		if err := k.Cluster.CreateTopic(name, d.NumPartitions, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return k, overlay(k.Env(), map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_USERNAME": user, "KAFKA_PASSWORD": kafkaPassword})
}

// brokerAdmin is a cluster admin of b (the super user's on Apache Kafka),
// closed at test end.
func brokerAdmin(t *testing.T, b testenv.Broker) sarama.ClusterAdmin {
	t.Helper()
	if k, ok := b.(*testenv.ApacheKafka); ok {
		return k.Admin()
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	admin, err := sarama.NewClusterAdmin(b.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return admin
}

// The app starts and plays with exactly the ACLs the Strimzi KafkaUser
// grants (no Create), the topics being the KafkaTopics: it only asks
// whether they exist, and writes checkpoints.
func TestPlaysWithManifestACLs(t *testing.T) {
	testenv.EachKafka(t, func(t *testing.T, kind string) {
		k, env := aclBroker(t, kind, stream.Topic, stream.CheckpointTopic)
		m := admInstance(t, testenv.StartRedis(t), k, overlay(env, map[string]string{"CHECKPOINT_INTERVAL": "200ms"}), nil)
		if code, body := readyz(t, m.URL()); code != 200 {
			t.Fatalf("readyz %d %v", code, body)
		}
		a, b := join(t, m.URL(), "ann"), join(t, m.URL(), "bob")
		tapN(t, m.URL(), a, 5)
		tapN(t, m.URL(), b, 3)
		waitTotals(t, m.URL(), map[*joined]int64{&a: 5, &b: 3})
		testenv.Eventually(t, 20*time.Second, func() string {
			if end := topicEnd(t, k, stream.CheckpointTopic, 0); end == 0 {
				return "no checkpoint written"
			}
			return ""
		})
	})
}

// topicEnd is the end offset of a partition, read as the super user.
func topicEnd(t *testing.T, b testenv.Broker, topic string, partition int32) int64 {
	t.Helper()
	switch k := b.(type) {
	case *testenv.Kafka:
		if p := k.Cluster.PartitionInfo(topic, partition); p != nil {
			return p.HighWatermark
		}
		return 0
	case *testenv.ApacheKafka:
		client, err := sarama.NewClient(k.Addrs(), k.SaramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		end, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		return end
	}
	t.Fatalf("broker %T", b)
	return 0
}

// With the manifest's ACLs (no Create) and game-checkpoints missing, the
// start fails at once naming the topic and the right it lacks.
func TestMissingTopicWithoutCreateRightFailsAtStart(t *testing.T) {
	testenv.EachKafka(t, func(t *testing.T, kind string) {
		_, env := aclBroker(t, kind, stream.Topic)
		r := testenv.StartRedis(t)
		startFailsWith(t, overlay(map[string]string{
			"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "REDIS_URL": r.URL(), "SESSION_SECRET": "test-secret-0123456789",
		}, env), []string{"kafka topic game-checkpoints does not exist", "no Create right on topic game-checkpoints", "partitions", "cleanup.policy=compact"}, kafkaPassword)
	})
}

// On a broker without the topics, one that would auto-create them with its
// defaults, tapwars creates both with settings of its own.
func TestCreatesTopicsWithItsOwnSettings(t *testing.T) {
	testenv.EachKafka(t, func(t *testing.T, kind string) {
		var k testenv.Broker
		if kind == "apache" {
			k = testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{BrokerConfig: map[string]string{
				"auto.create.topics.enable": "true", "num.partitions": "2"}})
		} else {
			k = testenv.StartKafka(t, 2) // kfake auto-creates topics with 2 partitions
		}
		m := admInstance(t, testenv.StartRedis(t), k, map[string]string{
			"KAFKA_PARTITIONS": "5", "KAFKA_RETENTION": "48h", "KAFKA_MIN_INSYNC_REPLICAS": "1"}, nil)
		a := join(t, m.URL(), "ann")
		tapN(t, m.URL(), a, 2)
		waitTotals(t, m.URL(), map[*joined]int64{&a: 2})
		admin := brokerAdmin(t, k)
		md, err := admin.DescribeTopics([]string{stream.Topic, stream.CheckpointTopic})
		if err != nil {
			t.Fatal(err)
		}
		parts := map[string]int{}
		for _, tm := range md {
			parts[tm.Name] = len(tm.Partitions)
		}
		if parts[stream.Topic] != 5 || parts[stream.CheckpointTopic] != 1 {
			t.Errorf("partitions %v, want %s 5 (KAFKA_PARTITIONS) and %s 1", parts, stream.Topic, stream.CheckpointTopic)
		}
		want := map[string]map[string]string{
			stream.Topic:           {"cleanup.policy": "delete", "retention.ms": "172800000", "min.insync.replicas": "1"},
			stream.CheckpointTopic: {"cleanup.policy": "compact", "min.insync.replicas": "1"},
		}
		for topic, cfg := range want {
			entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range entries {
				got[e.Name] = e.Value
			}
			for key, v := range cfg {
				if got[key] != v {
					t.Errorf("%s %s = %q, want %q", topic, key, got[key], v)
				}
			}
		}
	})
}
