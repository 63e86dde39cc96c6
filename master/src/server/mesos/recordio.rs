//! RecordIO framing of the event stream (Mesos' `docs/recordio.md`): each
//! record is its length in bytes as decimal digits, a `\n`, then the bytes.
//! No carriage return, no trailing newline; a record is never empty.

/// Frames one record: `<len>\n<bytes>`.
pub(crate) fn frame(record: &[u8]) -> Vec<u8> {
    let len = record.len().to_string();
    let mut out = Vec::with_capacity(len.len() + 1 + record.len());
    out.extend_from_slice(len.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(record);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder written from the format's description, independent of `frame`.
    fn decode(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n').expect("a length line");
            let len: usize = std::str::from_utf8(&bytes[..newline])
                .expect("ASCII digits")
                .parse()
                .expect("a decimal length");
            let start = newline + 1;
            records.push(bytes[start..start + len].to_vec());
            bytes = &bytes[start + len..];
        }
        records
    }

    #[test]
    fn a_record_is_its_length_a_newline_and_its_bytes() {
        assert_eq!(
            frame(br#"{"type":"HEARTBEAT"}"#),
            b"20\n{\"type\":\"HEARTBEAT\"}".to_vec()
        );
    }

    #[test]
    fn concatenated_records_decode_back() {
        let records: Vec<Vec<u8>> = vec![b"a".to_vec(), "é\n{}".as_bytes().to_vec(), vec![b'x'; 1234]];
        let stream: Vec<u8> = records.iter().flat_map(|r| frame(r)).collect();
        assert_eq!(decode(&stream), records);
    }

    #[test]
    fn length_counts_bytes_not_characters() {
        assert!(frame("é".as_bytes()).starts_with(b"2\n"));
    }
}
