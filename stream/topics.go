package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Topics is how tapwars creates its topics when they are missing. Existing
// topics are never changed: their settings are the operator's.
type Topics struct {
	// Partitions of game-taps (DefaultPartitions when 0).
	Partitions int32
	// ReplicationFactor of both topics; 0 takes min(3, brokers in the
	// cluster), so a single dev broker works and a production cluster
	// keeps three copies.
	ReplicationFactor int16
	// MinInsyncReplicas of both topics; 0 takes the replication factor - 1
	// (at least 1): with acks=all an acknowledged tap is on two brokers
	// when there are three.
	MinInsyncReplicas int
	// Retention of game-taps (retention.ms); 0 keeps records forever. It
	// is how far back a rebuild of Redis from the log can reach.
	Retention time.Duration
}

// Defaults of Topics.
const (
	DefaultPartitions = 6
	DefaultRetention  = 7 * 24 * time.Hour
)

// topicSpec is one topic tapwars needs and how it creates it.
type topicSpec struct {
	name   string
	detail sarama.TopicDetail
}

// specs are the topics with their settings, the cluster having brokers
// brokers.
func (t Topics) specs(brokers int) []topicSpec {
	parts := t.Partitions
	if parts <= 0 {
		parts = DefaultPartitions
	}
	rf := t.ReplicationFactor
	if rf <= 0 {
		rf = int16(max(min(3, brokers), 1))
	}
	isr := t.MinInsyncReplicas
	if isr <= 0 {
		isr = max(int(rf)-1, 1)
	}
	retention := "-1"
	if t.Retention > 0 {
		retention = strconv.FormatInt(t.Retention.Milliseconds(), 10)
	}
	str := func(s string) *string { return &s }
	return []topicSpec{
		{Topic, sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: rf, ConfigEntries: map[string]*string{
			"cleanup.policy":      str("delete"),
			"retention.ms":        str(retention),
			"min.insync.replicas": str(strconv.Itoa(isr)),
		}}},
		// One partition: a checkpoint is read back from its end.
		{CheckpointTopic, sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: rf, ConfigEntries: map[string]*string{
			"cleanup.policy":      str("compact"),
			"min.insync.replicas": str(strconv.Itoa(isr)),
		}}},
	}
}

// TopicState is what EnsureTopics found about game-taps.
type TopicState struct {
	// ID is game-taps' topic id (hex); "" when the broker does not send
	// topic ids (metadata older than v10).
	ID string
	// Cluster is the Kafka cluster id ("" from brokers that do not send it).
	Cluster string
}

// EnsureTopics checks that game-taps and game-checkpoints exist and creates
// the missing ones with t's settings. It asks for metadata first, so it
// needs no Create right for a topic that exists; without Describe on a
// topic, or Create on a missing one, it fails naming the topic and the
// right. It never lets the broker create a topic by default.
func EnsureTopics(c Config, t Topics, log *slog.Logger) (TopicState, error) {
	cfg, err := producerConfig(c) // the first connection: fail fast, as the producer does
	if err != nil {
		return TopicState{}, err
	}
	cfg.ClientID += "-admin"
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return TopicState{}, c.Security.explain(c.Brokers, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return TopicState{}, fmt.Errorf("kafka admin: %w", err)
	}
	defer admin.Close() // closes client too

	state, missing, err := describeTopics(client, c.Security.Username)
	if err != nil {
		return TopicState{}, err
	}
	if len(missing) == 0 {
		return state, nil
	}
	specs := t.specs(len(client.Brokers()))
	for _, s := range specs {
		if !missing[s.name] {
			continue
		}
		err := admin.CreateTopic(s.name, &s.detail, false)
		switch {
		case err == nil:
			log.Info("kafka: created topic", "topic", s.name, "partitions", s.detail.NumPartitions,
				"replicationFactor", s.detail.ReplicationFactor, "config", showConfig(s.detail.ConfigEntries))
		case errors.Is(err, sarama.ErrTopicAlreadyExists):
			// another instance created it meanwhile
		case errors.Is(err, sarama.ErrTopicAuthorizationFailed), errors.Is(err, sarama.ErrClusterAuthorizationFailed):
			return TopicState{}, fmt.Errorf("kafka topic %s does not exist and user %q may not create it (no Create right on topic %s or on the cluster): "+
				"create it (%s), or grant Create on it: %w", s.name, c.Security.Username, s.name, howToCreate(s), err)
		default:
			return TopicState{}, fmt.Errorf("create kafka topic %s (%s): %w", s.name, howToCreate(s), err)
		}
	}
	if missing[Topic] {
		if state, _, err = describeTopics(client, c.Security.Username); err != nil {
			return TopicState{}, err
		}
	}
	return state, nil
}

// describeTopics asks for both topics' metadata without auto-creation and
// reports game-taps' identity and which topics are missing.
func describeTopics(client sarama.Client, user string) (TopicState, map[string]bool, error) {
	b := client.LeastLoadedBroker()
	if b == nil {
		return TopicState{}, nil, fmt.Errorf("kafka metadata: %w", sarama.ErrOutOfBrokers)
	}
	req := sarama.NewMetadataRequest(client.Config().Version, []string{Topic, CheckpointTopic})
	req.AllowAutoTopicCreation = false
	res, err := b.GetMetadata(req)
	if err != nil {
		return TopicState{}, nil, fmt.Errorf("kafka metadata of %s and %s: %w", Topic, CheckpointTopic, err)
	}
	var state TopicState
	if res.ClusterID != nil {
		state.Cluster = *res.ClusterID
	}
	missing := map[string]bool{}
	for _, tm := range res.Topics {
		switch tm.Err {
		case sarama.ErrNoError:
			if tm.Name == Topic {
				state.ID = topicID(tm.Uuid)
			}
		case sarama.ErrUnknownTopicOrPartition:
			missing[tm.Name] = true
		case sarama.ErrTopicAuthorizationFailed:
			return TopicState{}, nil, fmt.Errorf("kafka user %q may not see topic %s: grant it Describe (and Read, Write) on topic %s: %w",
				user, tm.Name, tm.Name, tm.Err)
		default:
			return TopicState{}, nil, fmt.Errorf("kafka metadata of topic %s: %w", tm.Name, tm.Err)
		}
	}
	return state, missing, nil
}

// topicID is a topic id in hex, "" for the zero id (no id sent).
func topicID(u sarama.Uuid) string {
	if u == (sarama.Uuid{}) {
		return ""
	}
	return u.String()
}

// TopicIdentity reads game-taps' id and the cluster id, as EnsureTopics
// reports them, over an existing client.
func topicIdentity(client sarama.Client) (TopicState, error) {
	state, missing, err := describeTopics(client, "")
	if err == nil && missing[Topic] {
		err = fmt.Errorf("kafka topic %s: %w", Topic, sarama.ErrUnknownTopicOrPartition)
	}
	return state, err
}

// howToCreate says how an operator creates s.
func howToCreate(s topicSpec) string {
	return fmt.Sprintf("partitions=%d, replication factor=%d, config %s", s.detail.NumPartitions, s.detail.ReplicationFactor, showConfig(s.detail.ConfigEntries))
}

func showConfig(m map[string]*string) string {
	parts := make([]string, 0, len(m))
	for _, k := range []string{"cleanup.policy", "retention.ms", "min.insync.replicas"} {
		if v, ok := m[k]; ok && v != nil {
			parts = append(parts, k+"="+*v)
		}
	}
	return strings.Join(parts, ",")
}
