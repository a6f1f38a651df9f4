package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The offsets in game:offsets belong to one topic: the field "<topic>#id"
// holds its Kafka topic id. It is written only beside offsets (a Redis
// without offsets stays empty, so a checkpoint can be restored into it),
// and checkpoints carry it with the offsets.

// topicIDField is the field of topic's id in KeyOffsets.
func topicIDField(topic string) string { return topic + "#id" }

// TopicID is the id of the topic whose offsets the store holds ("" when
// none was recorded).
func (s *Store) TopicID(ctx context.Context, topic string) (string, error) {
	v, err := s.rdb.HGet(ctx, KeyOffsets, topicIDField(topic)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read topic id of %s: %w", topic, err)
	}
	return v, nil
}

var adoptTopicScript = newLuaScript("adopt_topic.lua")

// AdoptTopicID records id as the topic's when the store holds offsets and
// no id yet (offsets written before ids were kept, or the first batches).
func (s *Store) AdoptTopicID(ctx context.Context, topic, id string) error {
	if err := adoptTopicScript.Run(ctx, s.rdb, adoptTopicScript.Keys(0), topicIDField(topic), id).Err(); err != nil {
		return fmt.Errorf("record topic id of %s: %w", topic, err)
	}
	return nil
}

// rebaseTopicScript moves the projection onto a new topic of the same name
// if the stored id is still the old one: the old topic's offsets go, each
// partition of the new one starts at its first offset, in the current
// round (and its schedule) as if it had read the round's marker.
// ARGV: topic, old id, new id, then (partition, start)*.
var rebaseTopicScript = newLuaScript("rebase_topic.lua")

// RebaseTopic moves the projection's offsets of topic from the topic with
// id oldID to the one with id newID (recreated, or on another cluster),
// whose partitions start at starts; false if the stored id is no longer
// oldID (another instance did it).
func (s *Store) RebaseTopic(ctx context.Context, topic, oldID, newID string, starts map[int32]int64) (bool, error) {
	args := []any{topic, oldID, newID}
	for p, off := range starts {
		args = append(args, strconv.FormatInt(int64(p), 10), off)
	}
	n, err := rebaseTopicScript.Run(ctx, s.rdb, rebaseTopicScript.Keys(0), args...).Int()
	if err != nil {
		return false, fmt.Errorf("move offsets to the new topic %s: %w", topic, err)
	}
	return n == 1, nil
}
