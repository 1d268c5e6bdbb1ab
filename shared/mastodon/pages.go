package mastodon

import (
	"context"
	"errors"
)

// ErrRepeatedCursor: the server gave a next-page cursor it had given before. Following it
// would loop for ever, and stopping quietly would pass a partial list off as the whole one.
var ErrRepeatedCursor = errors.New("the server repeated a page cursor")

// Pages reads a paginated list to its end: read returns one page and the next page's cursor
// ("" at the end), starting from cursor "". On an error it returns what was read so far.
func Pages[T any](ctx context.Context, read func(ctx context.Context, cursor string) ([]T, string, error)) ([]T, error) {
	var all []T
	seen := map[string]bool{}
	cursor := ""
	for {
		page, next, err := read(ctx, cursor)
		if err != nil {
			return all, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		if seen[next] {
			return all, ErrRepeatedCursor
		}
		seen[next] = true
		cursor = next
	}
}
