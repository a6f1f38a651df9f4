package store

import (
	"context"
	"fmt"
	"time"
)

// StartAdminSession records a new admin session until it expires.
func (s *Store) StartAdminSession(ctx context.Context, id string, expires time.Time) error {
	if err := s.rdb.Set(ctx, KeyAdminSessionPrefix+id, 1, time.Until(expires)).Err(); err != nil {
		return fmt.Errorf("record admin session: %w", err)
	}
	return nil
}

// AdminSessionLive reports whether an admin session was started and not ended.
func (s *Store) AdminSessionLive(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, KeyAdminSessionPrefix+id).Result()
	if err != nil {
		return false, fmt.Errorf("read admin session: %w", err)
	}
	return n == 1, nil
}

// EndAdminSession ends an admin session everywhere (logout).
func (s *Store) EndAdminSession(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, KeyAdminSessionPrefix+id).Err(); err != nil {
		return fmt.Errorf("end admin session: %w", err)
	}
	return nil
}
