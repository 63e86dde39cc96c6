//! Reading a task's stdout or stderr through the master (operator
//! `ReadFile`), from an offset on, as `agora run` and `agora logs` do.

use crate::client::Operator;
use agora_proto::{SandboxFile, pb};
use std::io::Write;
use std::time::Duration;

/// How often a followed file is read again.
pub(crate) const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// The most one read asks for.
const CHUNK: u64 = 256 * 1024;

/// One sandbox file of one task, and how far it has been read.
#[derive(Debug)]
pub(crate) struct SandboxReader {
    operator: Operator,
    task_id: String,
    framework_id: Option<String>,
    file: SandboxFile,
    offset: u64,
}

impl SandboxReader {
    pub(crate) fn new(operator: Operator, task_id: &str, framework_id: Option<&str>, file: SandboxFile) -> Self {
        Self {
            operator,
            task_id: task_id.to_owned(),
            framework_id: framework_id.map(str::to_owned),
            file,
            offset: 0,
        }
    }

    /// Copies what the file holds past the offset to `out`, reading until a
    /// read returns nothing. Returns the bytes copied.
    pub(crate) async fn drain(&mut self, out: &mut impl Write) -> Result<u64, String> {
        let mut copied = 0;
        loop {
            let request = pb::ReadFileRequest {
                task_id: Some(pb::TaskId {
                    value: self.task_id.clone(),
                }),
                framework_id: self.framework_id.clone().map(|value| pb::FrameworkId { value }),
                file: self.file.into(),
                offset: self.offset,
                max_bytes: CHUNK,
            };
            let chunk = self
                .operator
                .call(|mut client| {
                    let request = request.clone();
                    async move { client.read_file(request).await }
                })
                .await
                .map_err(|error| error.to_string())?;
            if chunk.data.is_empty() {
                out.flush()
                    .map_err(|e| format!("cannot write the task's {}: {e}", self.file))?;
                return Ok(copied);
            }
            out.write_all(&chunk.data)
                .map_err(|e| format!("cannot write the task's {}: {e}", self.file))?;
            let read = chunk.data.len() as u64;
            self.offset = chunk.offset + read;
            copied += read;
        }
    }
}
