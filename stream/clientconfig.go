package stream

import "github.com/IBM/sarama"

// ClientConfig is the sarama configuration tapwars itself uses, for tools
// and tests that need a client of their own on the same cluster with the
// same security (internal/testenv's admin client of real Kafka).
func ClientConfig(c Config) (*sarama.Config, error) { return saramaConfig(c) }
