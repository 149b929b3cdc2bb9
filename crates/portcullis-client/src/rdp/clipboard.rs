//! Clipboard text both ways over the `cliprdr` static channel (IronRDP's
//! processor). IronRDP calls the backend synchronously while a PDU is processed;
//! the backend only records what happened, and the session task acts on it
//! afterwards (asks for the server's text, answers the server's requests).

use std::sync::{Arc, Mutex};

use ironrdp_cliprdr::backend::CliprdrBackend;
use ironrdp_cliprdr::pdu::{
    ClipboardFormat, ClipboardFormatId, ClipboardGeneralCapabilityFlags, FileContentsRequest,
    FileContentsResponse, FormatDataRequest, FormatDataResponse, LockDataId,
};

/// Longest clipboard text taken or given (UTF-8 bytes); more is refused.
pub const MAX_CLIPBOARD_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ClipEvent {
    /// The channel is up (or the server asks for our format list).
    WantsFormats,
    /// The server's clipboard changed; whether it holds text.
    RemoteCopy { text: bool },
    /// The server asks for our clipboard in this format.
    DataRequest(ClipboardFormatId),
    /// The server's text, when it sent some.
    DataResponse(Option<String>),
}

/// What IronRDP sees as the clipboard backend.
#[derive(Debug, Clone, Default)]
pub(super) struct Backend {
    pub(super) events: Arc<Mutex<Vec<ClipEvent>>>,
}

impl Backend {
    fn push(&self, event: ClipEvent) {
        self.events.lock().expect("clipboard events").push(event);
    }
}

impl ironrdp_core::AsAny for Backend {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl CliprdrBackend for Backend {
    fn temporary_directory(&self) -> &str {
        // File transfer is not offered; nothing is ever written there.
        "/nonexistent"
    }

    fn client_capabilities(&self) -> ClipboardGeneralCapabilityFlags {
        ClipboardGeneralCapabilityFlags::empty()
    }

    fn on_ready(&mut self) {
        self.push(ClipEvent::WantsFormats);
    }

    fn on_request_format_list(&mut self) {
        self.push(ClipEvent::WantsFormats);
    }

    fn on_process_negotiated_capabilities(&mut self, _: ClipboardGeneralCapabilityFlags) {}

    fn on_remote_copy(&mut self, available_formats: &[ClipboardFormat]) {
        let text = available_formats
            .iter()
            .any(|f| f.id == ClipboardFormatId::CF_UNICODETEXT);
        self.push(ClipEvent::RemoteCopy { text });
    }

    fn on_format_data_request(&mut self, request: FormatDataRequest) {
        self.push(ClipEvent::DataRequest(request.format));
    }

    fn on_format_data_response(&mut self, response: FormatDataResponse<'_>) {
        let text = if response.is_error() || response.data().len() > 2 * MAX_CLIPBOARD_BYTES {
            None
        } else {
            response.to_unicode_string().ok()
        };
        self.push(ClipEvent::DataResponse(text));
    }

    fn on_file_contents_request(&mut self, _: FileContentsRequest) {}

    fn on_file_contents_response(&mut self, _: FileContentsResponse<'_>) {}

    fn on_lock(&mut self, _: LockDataId) {}

    fn on_unlock(&mut self, _: LockDataId) {}
}
