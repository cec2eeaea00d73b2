use super::*;

fn cfg(dir: &Path) -> JournalConfig {
    let mut c = JournalConfig::new(dir.join("journal"));
    c.segment_bytes = 4096;
    c
}

fn all(r: &JournalReader) -> Vec<Record> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let b = r.read(from, &|_| true, 100, 1 << 20);
        out.extend(b.records);
        from = b.next;
        if b.end {
            return out;
        }
    }
}

#[test]
fn appends_roll_segments_and_survive_reopen_with_numbers_seqs_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut j = Journal::open(cfg(dir.path()), 77).unwrap();
        for i in 1..=300u64 {
            let topic = if i % 2 == 0 { "exec.V.A" } else { "exec.V.B" };
            j.append(topic, i.div_ceil(2), Some(&format!("V/E{i}")), &[b'x'; 40]);
            j.flush().unwrap();
        }
        assert!(j.stats().segments > 3, "{:?}", j.stats());
        let got = all(&j.reader());
        assert_eq!(got.len(), 300);
        assert_eq!(
            got.iter().map(|r| r.number).collect::<Vec<_>>(),
            (1..=300).collect::<Vec<_>>()
        );
    }
    let mut j = Journal::open(cfg(dir.path()), 99).unwrap();
    assert_eq!(j.epoch(), 77, "the first epoch is kept");
    assert_eq!(j.last_seqs().get("exec.V.A"), Some(&150));
    assert!(j.is_duplicate("V/E7"));
    assert!(!j.is_duplicate("V/E999"));
    j.append("exec.V.A", 151, None, b"after");
    j.flush().unwrap();
    let got = all(&j.reader());
    assert_eq!(got.last().map(|r| (r.number, r.seq)), Some((301, 151)));
}

#[test]
fn a_torn_tail_is_cut_and_a_flipped_byte_is_quarantined_but_the_rest_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    {
        let mut j = Journal::open(c.clone(), 1).unwrap();
        for i in 1..=100u64 {
            j.append("exec.V.A", i, None, &[b'p'; 60]);
            j.flush().unwrap();
        }
    }
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&c.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    // Flip a byte in the middle of the first segment, tear the last one's tail.
    let mut first = std::fs::read(&segs[0]).unwrap();
    first[500] ^= 0xff;
    std::fs::write(&segs[0], &first).unwrap();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    let f = OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);

    let j = Journal::open(c.clone(), 1).unwrap();
    let st = j.stats();
    assert!(st.damaged_bytes > 0, "{st:?}");
    assert!(st.torn_bytes > 0, "{st:?}");
    assert!(c.dir.join("quarantine").read_dir().unwrap().count() >= 1);
    let got = all(&j.reader());
    // One record lost to the flip, one to the tear; everything else served, in order.
    assert_eq!(
        got.len(),
        98,
        "{:?}",
        got.iter().map(|r| r.number).collect::<Vec<_>>()
    );
    assert!(got.windows(2).all(|w| w[0].number < w[1].number));
    assert_eq!(got.first().map(|r| r.number), Some(1));
}

#[test]
fn retention_drops_the_oldest_segments_and_readers_see_where_the_journal_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.max_bytes = 16 * 1024;
    let mut j = Journal::open(c, 1).unwrap();
    for i in 1..=2000u64 {
        j.append("exec.V.A", i, None, &[b'r'; 50]);
        j.flush().unwrap();
    }
    let st = j.stats();
    assert!(st.bytes <= 16 * 1024 + 4096 + 100, "{st:?}");
    let b = j.reader().read(1, &|_| true, 10, 1 << 20);
    assert!(b.oldest > 1);
    assert_eq!(b.records.first().map(|r| r.number), Some(b.oldest));
}

#[test]
fn a_second_writer_on_the_same_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Journal::open(cfg(dir.path()), 1).unwrap();
    let err = Journal::open(cfg(dir.path()), 1).err().expect("refused");
    assert!(err.to_string().contains("in use"), "{err}");
}
