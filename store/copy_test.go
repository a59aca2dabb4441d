package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cropshield/cropshield/internal/pgtest"
)

// fillRaw writes buckets straight into the key space: nested buckets three deep mixed with
// values, sequences at every level, empty values, binary keys and a value larger than a copy's
// transaction.
func fillRaw(t *testing.T, s *Store, big int) {
	t.Helper()
	err := s.update(t.Context(), "fill", func(tx Tx) error {
		top, err := tx.CreateBucketIfNotExists([]byte(bucketMessages))
		if err != nil {
			return err
		}
		if err := top.SetSequence(7); err != nil {
			return err
		}
		for i := range 30 {
			chat, err := top.CreateBucketIfNotExists(compositeKey("telegram", fmt.Sprint(-100-i)))
			if err != nil {
				return err
			}
			for j := range i % 5 {
				seq, err := chat.NextSequence()
				if err != nil {
					return err
				}
				if err := chat.Put(seqKey(seq), fmt.Appendf(nil, `{"text":"message %d of %d"}`, j, i)); err != nil {
					return err
				}
			}
			if i%7 == 0 { // a bucket inside a bucket inside a bucket, between values
				deep, err := chat.CreateBucketIfNotExists([]byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff})
				if err != nil {
					return err
				}
				if err := deep.SetSequence(uint64(1) << 63); err != nil {
					return err
				}
				if err := deep.Put([]byte("k"), []byte{}); err != nil {
					return err
				}
			}
		}
		inbox := tx.Bucket([]byte(bucketInbox))
		empty, err := inbox.CreateBucketIfNotExists([]byte("empty-with-sequence"))
		if err != nil {
			return err
		}
		if err := empty.SetSequence(3); err != nil {
			return err
		}
		if _, err := inbox.CreateBucketIfNotExists([]byte("empty")); err != nil {
			return err
		}
		ids := tx.Bucket([]byte(bucketContentIDs))
		for _, k := range [][]byte{{0}, {0, 0}, {0xff}, {0xff, 0xff, 0xff}, []byte("a\x00b"), []byte("é")} {
			if err := ids.Put(k, []byte{}); err != nil {
				return err
			}
		}
		photos := tx.Bucket([]byte(bucketPhotos))
		return photos.Put([]byte(hashOf(1)), bytes.Repeat([]byte{0xd8}, big))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// txSizes records the values, buckets and bytes of each transaction a copy commits.
type txSizes struct {
	last CopyProgress
	keys []int
	size []int64
}

func (s *txSizes) progress(p CopyProgress) {
	s.keys = append(s.keys, p.Keys-s.last.Keys+p.Buckets-s.last.Buckets)
	s.size = append(s.size, p.Bytes-s.last.Bytes)
	s.last = p
}

func TestCopyBoltToBolt(t *testing.T) {
	const big = 40 << 10
	for _, tc := range []struct {
		name string
		fill func(t *testing.T, s *Store)
		opts CopyOptions
	}{
		{"one of everything (API)", func(t *testing.T, s *Store) { populate(t, s) }, CopyOptions{}},
		{"raw buckets, default bounds", func(t *testing.T, s *Store) { fillRaw(t, s, big) }, CopyOptions{}},
		{"raw buckets, 7 keys a transaction", func(t *testing.T, s *Store) { fillRaw(t, s, big) }, CopyOptions{MaxTxKeys: 7}},
		{"raw buckets, 1 KiB a transaction", func(t *testing.T, s *Store) { fillRaw(t, s, big) }, CopyOptions{MaxTxBytes: 1 << 10}},
		{"API and raw, 1 key a transaction", func(t *testing.T, s *Store) { populate(t, s); fillRaw(t, s, big) }, CopyOptions{MaxTxKeys: 1}},
		{"empty store", func(*testing.T, *Store) {}, CopyOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := newTestStore(t, ""), newTestStore(t, "")
			tc.fill(t, src)
			var sizes txSizes
			tc.opts.Progress = sizes.progress
			rep, err := Copy(t.Context(), dst, src, tc.opts)
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			if !rep.Dest.Equal(rep.Source) {
				t.Errorf("the report's digests differ: %v %v", rep.Source, rep.Dest)
			}
			// Independently of the copy's own verification: both stores hold the same records.
			assertSameRecords(t, src, dst)
			srcSum, err := Checksum(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			if !srcSum.Equal(rep.Source) {
				t.Errorf("Checksum(src) = %v, the copy's source digest %v", srcSum, rep.Source)
			}
			maxKeys, maxBytes := tc.opts.MaxTxKeys, tc.opts.MaxTxBytes
			if maxKeys == 0 {
				maxKeys = defaultCopyTxKeys
			}
			if maxBytes == 0 {
				maxBytes = defaultCopyTxBytes
			}
			for i := range sizes.keys {
				if sizes.keys[i] > maxKeys || sizes.size[i] > maxBytes && sizes.keys[i] > 1 {
					t.Errorf("transaction %d wrote %d keys, %d bytes; bounds %d, %d", i, sizes.keys[i], sizes.size[i], maxKeys, maxBytes)
				}
			}
			if rep.Txs != len(sizes.keys) {
				t.Errorf("report: %d transactions, progress saw %d", rep.Txs, len(sizes.keys))
			}
			total := rep.Source.Total()
			if sizes.last.Keys != total.Keys || sizes.last.Buckets != total.Buckets || sizes.last.Bytes != total.Bytes {
				t.Errorf("progress ended at %+v, the digest counts %+v", sizes.last, total)
			}
			if tc.name == "API and raw, 1 key a transaction" && rep.Txs < total.Keys {
				t.Errorf("%d transactions for %d keys at 1 key each", rep.Txs, total.Keys)
			}
		})
	}
}

// TestCopyKeepsSequencesAndNesting reads the copied raw buckets through the interface, not
// through the digest.
func TestCopyKeepsSequencesAndNesting(t *testing.T) {
	src, dst := newTestStore(t, ""), newTestStore(t, "")
	fillRaw(t, src, 100)
	if _, err := Copy(t.Context(), dst, src, CopyOptions{MaxTxKeys: 3}); err != nil {
		t.Fatal(err)
	}
	err := dst.view(t.Context(), "read", func(tx Tx) error {
		top := tx.Bucket([]byte(bucketMessages))
		if got := top.Sequence(); got != 7 {
			t.Errorf("messages sequence %d, want 7", got)
		}
		chat := top.Bucket(compositeKey("telegram", "-114"))
		if chat == nil {
			t.Fatal("chat bucket -114 missing")
		}
		if got := chat.Sequence(); got != 4 {
			t.Errorf("chat sequence %d, want 4", got)
		}
		deep := chat.Bucket([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff})
		if deep == nil {
			t.Fatal("nested bucket missing")
		}
		if v := deep.Get([]byte("k")); v == nil || len(v) != 0 {
			t.Errorf("empty value = %v, want empty and present", v)
		}
		if got := deep.Sequence(); got != 1<<63 {
			t.Errorf("nested sequence %d", got)
		}
		inbox := tx.Bucket([]byte(bucketInbox))
		if b := inbox.Bucket([]byte("empty-with-sequence")); b == nil || b.Sequence() != 3 {
			t.Errorf("empty bucket with a sequence not copied")
		}
		if inbox.Bucket([]byte("empty")) == nil {
			t.Errorf("empty nested bucket not copied")
		}
		if v := tx.Bucket([]byte(bucketContentIDs)).Get([]byte{0xff, 0xff, 0xff}); v == nil {
			t.Errorf("binary key not copied")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// assertSameRecords compares two stores record by record.
func assertSameRecords(t *testing.T, a, b *Store) {
	t.Helper()
	err := a.view(t.Context(), "compare", func(atx Tx) error {
		return b.view(t.Context(), "compare", func(btx Tx) error {
			var n int
			var aerr, berr error
			var as, bs []record
			for r := range records(t.Context(), atx, &aerr) {
				as = append(as, cloneRecord(r))
				n++
			}
			for r := range records(t.Context(), btx, &berr) {
				bs = append(bs, cloneRecord(r))
			}
			if err := errors.Join(aerr, berr); err != nil {
				return err
			}
			if len(as) != len(bs) {
				t.Errorf("%d records, the copy %d", len(as), len(bs))
			}
			for i := range min(len(as), len(bs)) {
				if !as[i].equal(bs[i]) {
					t.Fatalf("record %d: %s, the copy %s", i, as[i], bs[i])
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func cloneRecord(r record) record {
	c := r
	c.path = make([][]byte, len(r.path))
	for i, p := range r.path {
		c.path[i] = bytes.Clone(p)
	}
	c.key, c.value = bytes.Clone(r.key), bytes.Clone(r.value)
	return c
}

// TestCopyRefusesADestinationWithData: the destination must be as Open made it; nothing is
// written into one that is not.
func TestCopyRefusesADestinationWithData(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dirty func(t *testing.T, s *Store)
		want  string
	}{
		{"a chat", func(t *testing.T, s *Store) {
			if _, err := s.TouchChat(t.Context(), Chat{Platform: "telegram", ID: "1", Kind: "private"}, testTime); err != nil {
				t.Fatal(err)
			}
		}, `bucket "chats" holds key "telegram\x001"`},
		{"a staff account", func(t *testing.T, s *Store) {
			if err := s.AddStaff(t.Context(), StaffAccount{Name: "ops", Role: "admin", PasswordHash: []byte("x"), Created: testTime}); err != nil {
				t.Fatal(err)
			}
		}, `bucket "staff" holds key "ops"`},
		{"a sequence only", func(t *testing.T, s *Store) {
			rawUpdate(t, s, func(tx Tx) error { return tx.Bucket([]byte(bucketTurns)).SetSequence(1) })
		}, `bucket "turns" has sequence 1`},
		{"another key in meta", func(t *testing.T, s *Store) {
			rawUpdate(t, s, func(tx Tx) error { return tx.Bucket([]byte(bucketMeta)).Put([]byte("x"), []byte("y")) })
		}, `bucket "meta" holds key "x"`},
		{"an empty nested bucket", func(t *testing.T, s *Store) {
			rawUpdate(t, s, func(tx Tx) error {
				_, err := tx.Bucket([]byte(bucketInbox)).CreateBucketIfNotExists([]byte("telegram"))
				return err
			})
		}, `bucket "inbox" holds key "telegram"`},
		{"a bucket this build does not know", func(t *testing.T, s *Store) {
			rawUpdate(t, s, func(tx Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("later"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			})
		}, `bucket "later" holds key "k"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := newTestStore(t, ""), newTestStore(t, "")
			populate(t, src)
			tc.dirty(t, dst)
			before, err := Checksum(t.Context(), dst)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Copy(t.Context(), dst, src, CopyOptions{})
			if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Copy = %v, want ErrNotEmpty naming %s", err, tc.want)
			}
			after, err := Checksum(t.Context(), dst)
			if err != nil {
				t.Fatal(err)
			}
			if !after.Equal(before) {
				t.Errorf("the refused destination changed: %v → %v", before, after)
			}
		})
	}
}

func rawUpdate(t *testing.T, s *Store, fn func(tx Tx) error) {
	t.Helper()
	if err := s.update(t.Context(), "raw", fn); err != nil {
		t.Fatal(err)
	}
}

func TestCopyRefusesAnotherSchemaVersion(t *testing.T) {
	path := tempPath(t)
	old := newTestStore(t, path)
	populate(t, old)
	rawUpdate(t, old, func(tx Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchemaVersion), seqKey(SchemaVersion-1))
	})
	for _, tc := range []struct {
		name     string
		dst, src *Store
	}{
		{"source", newTestStore(t, ""), old},
		{"destination", old, newTestStore(t, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Copy(t.Context(), tc.dst, tc.src, CopyOptions{})
			if !errors.Is(err, ErrSchemaMismatch) || !strings.Contains(err.Error(), path) {
				t.Errorf("Copy = %v, want ErrSchemaMismatch naming %s", err, path)
			}
		})
	}
}

// TestCopyVerifyFindsTheDifference changes the destination while the copy runs (after its first
// transaction): the verification fails and names what differs.
func TestCopyVerifyFindsTheDifference(t *testing.T) {
	chatLog := compositeKey("telegram", "-100")
	for _, tc := range []struct {
		name   string
		tamper func(tx Tx) error
		want   string
	}{
		{"a changed value", func(tx Tx) error {
			return tx.Bucket([]byte(bucketContentIDs)).Put([]byte{0xff}, []byte("x"))
		}, `the value of key "\xff" in bucket "content_ids" (0 bytes in the source, 1 in the copy)`},
		{"a removed value", func(tx Tx) error {
			return tx.Bucket([]byte(bucketContentIDs)).Delete([]byte("a\x00b"))
		}, `key "a\x00b" in bucket "content_ids"`},
		{"an added value", func(tx Tx) error {
			return tx.Bucket([]byte(bucketContentIDs)).Put([]byte("a\x00a"), []byte("v"))
		}, `key "a\x00a" in bucket "content_ids"`},
		{"a nested bucket's sequence", func(tx Tx) error {
			return tx.Bucket([]byte(bucketMessages)).Bucket(chatLog).SetSequence(99)
		}, `bucket "messages"/"telegram\x00-100" (sequence 99)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := newTestStore(t, ""), newTestStore(t, "")
			populate(t, src)
			fillRaw(t, src, 10)
			tampered := false
			opts := CopyOptions{MaxTxKeys: 5, Progress: func(p CopyProgress) {
				if !tampered && p.Bucket > bucketMessages { // content_ids and messages are copied
					tampered = true
					rawUpdate(t, dst, tc.tamper)
				}
			}}
			rep, err := Copy(t.Context(), dst, src, opts)
			if !tampered {
				t.Fatal("never tampered")
			}
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Copy = %v, want ErrMismatch naming %s", err, tc.want)
			}
			if rep.Source.Sum == rep.Dest.Sum {
				t.Errorf("the report shows equal digests: %v", rep.Source)
			}
			// An operator's own check (cropshield checksum) tells the stores apart too.
			a, err := Checksum(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Checksum(t.Context(), dst)
			if err != nil {
				t.Fatal(err)
			}
			if a.Sum == b.Sum {
				t.Errorf("Checksum: the same digest %v for different stores", a)
			}
			if _, _, err := Compare(t.Context(), src, dst); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compare = %v, want ErrMismatch naming %s", err, tc.want)
			}
		})
	}
}

// TestChecksumFieldsAreDelimited: records that concatenate to the same bytes hash differently.
func TestChecksumFieldsAreDelimited(t *testing.T) {
	sums := map[string]string{}
	for _, kv := range [][2]string{{"ab", "c"}, {"a", "bc"}, {"abc", ""}} {
		s := newTestStore(t, "")
		rawUpdate(t, s, func(tx Tx) error { return tx.Bucket([]byte(bucketChats)).Put([]byte(kv[0]), []byte(kv[1])) })
		d, err := Checksum(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := sums[d.String()]; ok {
			t.Errorf("%q and %q hash alike", kv, other)
		}
		sums[d.String()] = kv[0] + "=" + kv[1]
	}
	// An empty top-level bucket counts as missing (Open creates them); a nested one does not.
	a, b := newTestStore(t, ""), newTestStore(t, "")
	rawUpdate(t, b, func(tx Tx) error { return tx.DeleteBucket([]byte(bucketRefsPending)) })
	da, _ := Checksum(t.Context(), a)
	db, _ := Checksum(t.Context(), b)
	if !da.Equal(db) {
		t.Errorf("a store without an empty bucket hashes differently: %v %v", da, db)
	}
	rawUpdate(t, b, func(tx Tx) error {
		_, err := tx.Bucket([]byte(bucketInbox)).CreateBucketIfNotExists([]byte("x"))
		return err
	})
	if db, _ = Checksum(t.Context(), b); da.Equal(db) {
		t.Errorf("an empty nested bucket does not change the digest")
	}
}

func TestCopyCancelled(t *testing.T) {
	src, dst := newTestStore(t, ""), newTestStore(t, "")
	fillRaw(t, src, 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := Copy(ctx, dst, src, CopyOptions{MaxTxKeys: 5, Progress: func(CopyProgress) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Copy = %v, want context.Canceled", err)
	}
}

// loadRealistic writes n conversations through the store's API, as the handler would:
// each farmer's message recorded with its chat and sender, answered and its turn finished; one
// in four a photo (300 distinct photos with their analyses, overlays and content ids), one in ten
// with a language, a crop question, a staff correction or a resolved mark; more history appended
// in batches; staff accounts, sessions and their audit; a pending inbox.
func loadRealistic(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := t.Context()
	platforms := []string{"telegram", "whatsapp", "webchat"}
	var history []Record
	for i := range n {
		p, chat, sender := platforms[i%3], fmt.Sprintf("%d", 100000+i), fmt.Sprintf("u%d", i)
		kind := "private"
		if i%17 == 0 {
			kind, chat = "group", fmt.Sprintf("-100%d", i)
		}
		at := testTime.Add(time.Duration(i) * time.Minute)
		msgID := fmt.Sprintf("m%d", i)
		in := Record{Time: at, Platform: p, ChatID: chat, Direction: Inbound, SenderID: sender,
			SenderName: "Farmer " + sender, MessageID: msgID, Text: "my tomato leaves have brown spots", Lang: "sw"}
		hash := ""
		if i%4 == 0 {
			hash = hashOf(i / 4 % 300)
			in.Text = ""
		}
		arr, err := s.RecordInbound(ctx, in, &Chat{Platform: p, ID: chat, Kind: kind, Title: "Growers"},
			&User{Platform: p, ID: sender, Name: "Farmer " + sender, LangHint: "sw"})
		if err != nil {
			t.Fatal(err)
		}
		in.Seq = arr.Turn.Seq
		kindOut := "command"
		if hash != "" {
			if i < 4*300 {
				a := Analysis{PhotoHash: hash, ModelVersion: "v2", Top: []Candidate{{Class: "tomato__late_blight", Prob: 0.81}, {Class: "tomato__early_blight", Prob: 0.12}},
					Overlay: bytes.Repeat([]byte{0xff, 0xd8, byte(i)}, 3000), InferenceMS: 41, CreatedAt: at}
				if err := s.PutAnalysis(ctx, a, bytes.Repeat([]byte{byte(i), 0xd9}, 12000), "image/jpeg"); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.PutContentID(ctx, p, "cid-"+msgID, hash); err != nil {
				t.Fatal(err)
			}
			in.PhotoHash = hash
			if err := s.AttemptReply(ctx, p, chat, msgID, 0, &in); err != nil {
				t.Fatal(err)
			}
			kindOut = kindDiagnosis
		}
		out := Record{Time: at.Add(time.Second), Platform: p, ChatID: chat, Direction: Outbound, Text: "Most likely: late blight ...",
			PhotoHash: hash, ReplyTo: msgID, Kind: kindOut, Lang: "sw"}
		if err := s.ReplySent(ctx, msgID, 0, out, true); err != nil {
			t.Fatal(err)
		}
		switch i % 10 {
		case 1:
			if err := s.SetUserLanguage(ctx, p, sender, "fr"); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := s.SetChatCrop(ctx, p, chat, "tomato"); err != nil {
				t.Fatal(err)
			}
		case 4:
			if hash == "" {
				break
			}
			q := CropQuestion{Platform: p, ChatID: chat, PhotoHash: hash, MessageID: msgID, SenderID: sender, Crops: []string{"tomato", "potato", "other"}, Lang: "sw", Asked: at}
			if err := s.PutCropQuestion(ctx, q); err != nil {
				t.Fatal(err)
			}
		case 8:
			if hash == "" {
				break
			}
			c := Correction{PhotoHash: hash, Class: "tomato__early_blight", ModelClass: "tomato__late_blight", ModelVersion: "v2", By: "agnes", At: at.Add(time.Hour)}
			if err := s.PutCorrection(ctx, c, p, chat); err != nil {
				t.Fatal(err)
			}
		case 9:
			if err := s.SetResolved(ctx, p, chat, true, "agnes", at.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		history = append(history,
			Record{Time: at.Add(2 * time.Second), Platform: p, ChatID: chat, Direction: Inbound, SenderID: sender, Text: "thank you"},
			Record{Time: at.Add(3 * time.Second), Platform: p, ChatID: chat, Direction: Outbound, Kind: "command", Text: "Send /help"})
		if len(history) >= 4000 {
			if _, err := s.AppendMessages(ctx, history); err != nil {
				t.Fatal(err)
			}
			history = history[:0]
		}
	}
	if _, err := s.AppendMessages(ctx, history); err != nil {
		t.Fatal(err)
	}
	for i, role := range []string{"admin", "agent", "viewer"} {
		name := fmt.Sprintf("staff%d", i)
		if err := s.AddStaffBy(ctx, StaffAccount{Name: name, Role: role, PasswordHash: []byte("$2a$10$hash"), Created: testTime}, "root"); err != nil {
			t.Fatal(err)
		}
		if err := s.PutStaffSession(ctx, StaffSession{IDHash: fmt.Sprintf("%064x", i), Name: name, Created: testTime, Seen: testTime}); err != nil {
			t.Fatal(err)
		}
	}
	var pending []InboxUpdate
	for id := range int64(20) {
		pending = append(pending, InboxUpdate{ID: 5000 + id, Data: fmt.Appendf(nil, `{"update_id":%d}`, 5000+id)})
	}
	if err := s.SaveInbox(ctx, "telegram", pending, 5020); err != nil {
		t.Fatal(err)
	}
	if err := s.DoneInbox(ctx, "telegram", 5000, 5001); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateRoundTrip10000Conversations is issue 15's test: a store of 10,000 conversations
// copied from bbolt to PostgreSQL and back to bbolt, with the same digest and counts at every
// step; and through bbolt alone where no PostgreSQL is at hand.
func TestMigrateRoundTrip10000Conversations(t *testing.T) {
	if onPG() {
		t.Skip("the bbolt run of the store's tests copies through PostgreSQL already")
	}
	n := 10_000
	if testing.Short() {
		n = 500
	}
	src := newTestStore(t, tempPath(t))
	start := time.Now()
	loadRealistic(t, src, n)
	t.Logf("%d conversations written through the API in %v", n, time.Since(start).Round(time.Millisecond))
	want, err := Checksum(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, b := range want.Buckets {
		counts[b.Name] = b.Keys + b.Buckets
	}
	if counts[bucketSummaries] != n || counts[bucketChats] != n || counts[bucketUsers] != n || counts[bucketTurns] != n {
		t.Fatalf("the fixture holds %v, want %d conversations", counts, n)
	}
	t.Logf("source: %s, %+v", want, want.Total())

	// copyTo copies from into the empty store to, checks the digests and logs the figures.
	copyTo := func(t *testing.T, what string, from, to *Store) {
		t.Helper()
		// The source's one read transaction lasts the whole copy: on PostgreSQL, one whose context
		// has no deadline would be bounded by Options.QueryTimeout.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		rep, err := Copy(ctx, to, from, CopyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		took := time.Since(start)
		if !rep.Dest.Equal(want) || !rep.Source.Equal(want) {
			t.Fatalf("%s: digests %v → %v, want %v", what, rep.Source, rep.Dest, want)
		}
		tot := want.Total()
		t.Logf("%s: %d values, %d buckets, %.1f MB in %d transactions, %v (%.0f values/s, %.1f MB/s)", what,
			tot.Keys, tot.Buckets, float64(tot.Bytes)/1e6, rep.Txs, took.Round(time.Millisecond),
			float64(tot.Keys)/took.Seconds(), float64(tot.Bytes)/1e6/took.Seconds())
	}
	boltPath := func(s *Store) string {
		be, ok := s.eng.(*boltEngine)
		if !ok {
			return ""
		}
		fi, err := os.Stat(be.path)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
	}
	t.Logf("source file: %s", boltPath(src))

	t.Run("bbolt-bbolt", func(t *testing.T) {
		mid := newTestStore(t, tempPath(t))
		copyTo(t, "bbolt → bbolt", src, mid)
		back := newTestStore(t, tempPath(t))
		copyTo(t, "bbolt → bbolt (back)", mid, back)
		t.Logf("copy's file: %s", boltPath(back))
		populateCheck(t, back, n)
		appendAfterCopy(t, back)
	})
	t.Run("bbolt-postgres-bbolt", func(t *testing.T) {
		pg, url := newPGStore(t)
		copyTo(t, "bbolt → PostgreSQL", src, pg)
		t.Logf("PostgreSQL: %s", pgSize(t, url))
		populateCheck(t, pg, n)
		back := newTestStore(t, tempPath(t))
		copyTo(t, "PostgreSQL → bbolt", pg, back)
		t.Logf("copy's file: %s", boltPath(back))
		populateCheck(t, back, n)
		appendAfterCopy(t, pg)
		appendAfterCopy(t, back)
	})
}

// populateCheck reads a copy of loadRealistic's store through the API.
func populateCheck(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := t.Context()
	p, err := s.ListConversations(ctx, ListOptions{Limit: 50})
	if err != nil || len(p.Items) != 50 {
		t.Fatalf("ListConversations: %d items, %v", len(p.Items), err)
	}
	last := n - 1
	chat := fmt.Sprintf("%d", 100000+last)
	if last%17 == 0 {
		chat = fmt.Sprintf("-100%d", last)
	}
	msgs, err := s.Messages(ctx, []string{"telegram", "whatsapp", "webchat"}[last%3], chat, 0, 10)
	if err != nil || len(msgs) != 4 {
		t.Fatalf("Messages of the last chat: %d, %v", len(msgs), err)
	}
	if _, err := s.GetAnalysis(ctx, hashOf(0), "v2"); err != nil {
		t.Errorf("GetAnalysis: %v", err)
	}
	if data, _, err := s.GetPhoto(ctx, hashOf(0)); err != nil || len(data) != 24000 {
		t.Errorf("GetPhoto: %d bytes, %v", len(data), err)
	}
	if pending, err := s.PendingInbox(ctx, "telegram"); err != nil || len(pending) != 18 {
		t.Errorf("PendingInbox: %d, %v", len(pending), err)
	}
	if audit, err := s.StaffAuditLog(ctx, 10); err != nil || len(audit) != 3 {
		t.Errorf("StaffAuditLog: %d, %v", len(audit), err)
	}
}

// appendAfterCopy checks that a copy keeps working: sequences continue where the source's
// stopped. It writes.
func appendAfterCopy(t *testing.T, s *Store) {
	t.Helper()
	seq, err := s.AppendMessage(t.Context(), Record{Time: testTime, Platform: "webchat", ChatID: "100002", Direction: Inbound, Text: "again"})
	if err != nil || seq != 5 {
		t.Errorf("AppendMessage after the copy: seq %d, %v; want 5", seq, err)
	}
}

// newPGStore opens a store in a new, empty PostgreSQL database (internal/pgtest), or skips
// where PostgreSQL is not installed.
func newPGStore(t *testing.T) (*Store, string) {
	t.Helper()
	url := pgtest.URL(t)
	return newTestStore(t, url), url
}

// pgSize is the size of a PostgreSQL database and of its key-value table with its index.
func pgSize(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var db, kv int64
	if err := conn.QueryRow(t.Context(), "SELECT pg_database_size(current_database()), pg_total_relation_size('kv')").Scan(&db, &kv); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("database %.1f MB, table kv with its index %.1f MB", float64(db)/1e6, float64(kv)/1e6)
}
