//! RemoteFX across a deactivation-reactivation (the vendored `ironrdp-session`
//! patch, `vendor/ironrdp-session/PORTCULLIS.md`): xrdp goes on with its
//! RemoteFX stream after the client resizes the desktop without sending the
//! codec's headers again. A context that forgot them failed every frame after
//! ("no RFX channel found") and the session ended; the carried-over context
//! decodes them, sized by the new desktop.

use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::ReadCursor;
use ironrdp_pdu::codecs::rfx::{Quant, RfxRectangle};
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_session::image::DecodedImage;
use ironrdp_session::rfx::DecodingContext;

use super::test_streams::{headers, whole};

/// A frame whose region is `rectangle` (no tiles: the region alone says what
/// the frame covers).
fn frame(index: u32, rectangle: RfxRectangle) -> Vec<u8> {
    super::test_streams::frame(index, vec![rectangle], vec![Quant::default()], Vec::new())
}

/// Headers for a `channel` (width, height), then a frame over `rectangle`.
fn headers_then_frame(channel: (i16, i16), index: u32, rectangle: RfxRectangle) -> Vec<u8> {
    let mut bytes = headers(channel.0, channel.1);
    bytes.extend(frame(index, rectangle));
    bytes
}

#[test]
fn remote_fx_frames_after_a_reactivation_without_new_headers_are_drawn_on_the_new_desktop() {
    // Before: a 64×64 desktop, headers then a frame.
    let mut context = DecodingContext::new();
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 64, 64);
    let square = RfxRectangle {
        x: 0,
        y: 0,
        width: 64,
        height: 64,
    };
    let first = headers_then_frame((64, 64), 0, square.clone());
    let (_, drawn) = context
        .decode(&mut image, &whole(64, 64), &mut ReadCursor::new(&first))
        .expect("the first frame");
    assert_eq!(drawn, whole(64, 64));

    // The desktop is resized to 128×64; the server's next frame covers its new
    // right half, with no headers.
    let after = frame(
        1,
        RfxRectangle {
            x: 64,
            y: 0,
            width: 64,
            height: 64,
        },
    );
    let mut resized = DecodedImage::new(PixelFormat::RgbA32, 128, 64);

    // What happened before the patch: a fresh context has no channel.
    let error = DecodingContext::new()
        .decode(&mut resized, &whole(128, 64), &mut ReadCursor::new(&after))
        .expect_err("a fresh context knows no channel");
    assert!(
        error.to_string().contains("no RFX channel"),
        "unexpected error: {error}"
    );

    // The carried-over context draws it, bounded by the new desktop, not the
    // old 64×64 channel.
    let mut context = context.carry_over();
    let (_, drawn) = context
        .decode(&mut resized, &whole(128, 64), &mut ReadCursor::new(&after))
        .expect("a frame after the reactivation");
    assert_eq!(
        drawn,
        InclusiveRectangle {
            left: 64,
            top: 0,
            right: 127,
            bottom: 63,
        }
    );

    // New headers from the server (a 32×32 channel) take over again.
    let renewed = headers_then_frame((32, 32), 2, square);
    let (_, drawn) = context
        .decode(
            &mut resized,
            &whole(128, 64),
            &mut ReadCursor::new(&renewed),
        )
        .expect("a frame with new headers");
    assert_eq!(drawn, whole(32, 32));
}
