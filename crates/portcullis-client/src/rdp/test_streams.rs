//! RemoteFX streams as a server sends them, for the RDP tests: the codec's
//! headers and frames (built by portcullis-rfx's `sample`, with IronRDP's
//! own PDU types), and the rectangle of a whole desktop.

use ironrdp_pdu::geometry::InclusiveRectangle;
pub(super) use portcullis_rfx::sample::{stream_frame as frame, stream_headers as headers};

/// The whole of a `width`×`height` desktop.
pub(super) fn whole(width: u16, height: u16) -> InclusiveRectangle {
    InclusiveRectangle {
        left: 0,
        top: 0,
        right: width - 1,
        bottom: height - 1,
    }
}
