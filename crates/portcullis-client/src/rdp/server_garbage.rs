//! A server's bytes, damaged every way a fuzzer would (flipped bits, extreme
//! length fields, cuts, insertions), through the parts of the session that
//! read them: the RemoteFX path (IronRDP's block parser, the vendored
//! `ironrdp-session`'s decoding context, portcullis-rfx's tile decoder) and
//! whole fast-path frames through `ActiveStage::process` (bitmaps with their
//! codecs, palettes, pointers, surface commands), slow-path share data PDUs
//! and clipboard PDUs. Each gives its result or an
//! error, never a panic, and keeps working for the next sound input.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::codecs::rfx::{EntropyAlgorithm, Quant, RfxRectangle};
use ironrdp_pdu::{Action, ReadCursor};
use ironrdp_session::image::DecodedImage;
use ironrdp_session::rfx::DecodingContext;
use ironrdp_svc::StaticChannelSet;
use portcullis_rfx::sample::{Noise, QUANT, encode_tile, tiles};

use super::test_streams::{frame, headers, whole};
use super::*;

/// A sound stream for a 128×128 desktop: the headers, then a frame of four
/// real tiles (a gradient, stripes, flat colours), its region the whole desktop.
fn sound_stream(noise: &mut Noise) -> Vec<u8> {
    let whole_desktop = RfxRectangle {
        x: 0,
        y: 0,
        width: 128,
        height: 128,
    };
    stream(noise, vec![whole_desktop], |i| {
        ((i % 2) as u16, (i / 2) as u16)
    })
}

/// The headers for a 128×128 channel, then a frame of four real tiles at
/// `tile_at(i)` (in tiles), its region `rectangles`.
fn stream(
    noise: &mut Noise,
    rectangles: Vec<RfxRectangle>,
    tile_at: impl Fn(usize) -> (u16, u16),
) -> Vec<u8> {
    let pictures: Vec<Vec<u8>> = (0..4)
        .map(|t| {
            let seed = noise.next_u64();
            (0..64 * 64)
                .flat_map(|p| {
                    let (x, y) = (p % 64, p / 64);
                    let v = match t {
                        0 => (x * 4) as u8,
                        1 => {
                            if (y + seed as usize) % 6 < 3 {
                                0x20
                            } else {
                                0xe0
                            }
                        }
                        _ => seed as u8,
                    };
                    [v, v.wrapping_add(y as u8), 0x80, 0xff]
                })
                .collect()
        })
        .collect();
    let encoded: Vec<[Vec<u8>; 3]> = pictures
        .iter()
        .map(|rgba| encode_tile(rgba, &QUANT, EntropyAlgorithm::Rlgr3))
        .collect();
    let tiles = tiles(&encoded, tile_at);
    let mut bytes = headers(128, 128);
    bytes.extend(frame(0, rectangles, vec![QUANT, Quant::default()], tiles));
    bytes
}

/// One way of damaging `bytes`, as a fuzzer mutates.
fn damage(bytes: &mut Vec<u8>, noise: &mut Noise) {
    for _ in 0..1 + noise.below(4) {
        let len = bytes.len().max(1);
        match noise.below(6) {
            // A flipped bit.
            0 => {
                let at = noise.below(len).min(bytes.len().saturating_sub(1));
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << noise.below(8);
                }
            }
            // A random byte.
            1 => {
                let at = noise.below(len).min(bytes.len().saturating_sub(1));
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = noise.next_u64() as u8;
                }
            }
            // A length or count field's extremes: 16 or 32 bits of 0x00 or 0xff.
            2 => {
                let at = noise.below(len);
                let fill = if noise.below(2) == 0 { 0x00 } else { 0xff };
                for byte in bytes.iter_mut().skip(at).take(2 + 2 * noise.below(2)) {
                    *byte = fill;
                }
            }
            // Cut short.
            3 => bytes.truncate(noise.below(len)),
            // Random bytes put in.
            4 => {
                let at = noise.below(len).min(bytes.len());
                let extra: Vec<u8> = (0..1 + noise.below(16))
                    .map(|_| noise.next_u64() as u8)
                    .collect();
                bytes.splice(at..at, extra);
            }
            // A stretch cut out.
            _ => {
                let at = noise.below(len).min(bytes.len());
                let end = (at + 1 + noise.below(32)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
}

/// Damaged inputs counted: taken (a result) and refused (an error).
#[derive(Default)]
struct Tally {
    taken: usize,
    refused: usize,
}

impl Tally {
    /// Runs `process` on a damaged `input` and counts what it gives; a panic
    /// fails the test, naming the round, `what` the input was and its bytes.
    fn count<T, E>(
        &mut self,
        round: usize,
        what: &str,
        input: &[u8],
        process: impl FnOnce() -> Result<T, E>,
    ) {
        match catch_unwind(AssertUnwindSafe(process)) {
            Ok(Ok(_)) => self.taken += 1,
            Ok(Err(_)) => self.refused += 1,
            Err(_) => panic!("round {round}: a panic on {what}: {input:02x?}"),
        }
    }
}

/// `process` takes every sound seed (so the damage starts from real input).
fn takes_every_seed<T, E: std::fmt::Display>(
    seeds: &[Vec<u8>],
    mut process: impl FnMut(&[u8]) -> Result<T, E>,
) {
    for (i, seed) in seeds.iter().enumerate() {
        if let Err(e) = process(seed) {
            panic!("seed {i} is refused: {e}");
        }
    }
}

/// `rounds` damaged copies of the seeds, in turn, through `process`: each
/// gives its result or an error, never a panic, and both outcomes happen many
/// times over (the damage reached past the first checks).
fn survives_damage<T, E>(
    seeds: &[Vec<u8>],
    rounds: usize,
    noise: &mut Noise,
    what: &str,
    mut process: impl FnMut(&[u8]) -> Result<T, E>,
) {
    let mut tally = Tally::default();
    for round in 0..rounds {
        let mut input = seeds[round % seeds.len()].clone();
        damage(&mut input, noise);
        tally.count(round, what, &input, || process(&input));
    }
    let Tally { taken, refused } = tally;
    assert!(
        taken > 100 && refused > 100,
        "{taken} taken, {refused} refused"
    );
}

#[test]
fn damaged_remote_fx_bytes_give_a_frame_or_an_error_never_a_panic() {
    let mut noise = Noise(0x0bad_5eed_f00d_cafe);
    let sound = sound_stream(&mut noise);

    // The sound stream decodes, so the damage below starts from real frames.
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
    let mut context = DecodingContext::new();
    context
        .decode(&mut image, &whole(128, 128), &mut ReadCursor::new(&sound))
        .expect("the sound stream decodes");

    let mut tally = Tally::default();
    for round in 0..2000 {
        let mut bytes = sound.clone();
        damage(&mut bytes, &mut noise);
        // Desktops smaller and larger than the stream's channel.
        let (width, height) = [(128, 128), (64, 64), (200, 96), (1, 1)][round % 4];
        let mut image = DecodedImage::new(PixelFormat::RgbA32, width, height);
        // A fresh context and one that lived through earlier frames.
        let mut fresh = DecodingContext::new();
        for context in [&mut fresh, &mut context] {
            tally.count(round, "damaged RemoteFX bytes", &bytes, || {
                context.decode(
                    &mut image,
                    &whole(width, height),
                    &mut ReadCursor::new(&bytes),
                )
            });
        }
    }
    let Tally {
        taken: decoded,
        refused,
    } = tally;
    // Both outcomes happened, many times over: the damage reached the parser
    // and the tile decoder, not only one of them.
    assert!(
        decoded > 50 && refused > 50,
        "{decoded} decoded, {refused} refused"
    );

    // After all that, the long-lived context still decodes a sound stream.
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
    context
        .decode(&mut image, &whole(128, 128), &mut ReadCursor::new(&sound))
        .expect("a sound stream after the damaged ones");
}

/// Found by the test above (round 1761): a region rectangle of width 0 made
/// `x + width - 1` underflow (a panic in debug builds; in release builds the
/// rectangle wrapped round to the desktop's right edge), and a tile index past
/// 1023 overflowed its pixel position. Both are now refused quietly: nothing
/// outside the desktop or the region is drawn.
#[test]
fn an_empty_region_rectangle_and_a_tile_far_outside_draw_nothing_and_do_not_panic() {
    let mut noise = Noise(7);
    let empty = RfxRectangle {
        x: 0,
        y: 0,
        width: 0,
        height: 64,
    };
    let far_edge = RfxRectangle {
        x: u16::MAX,
        y: u16::MAX,
        width: u16::MAX,
        height: 1,
    };
    for (rectangles, tile_at) in [
        (
            vec![empty.clone()],
            (|i| ((i % 2) as u16, (i / 2) as u16)) as fn(usize) -> (u16, u16),
        ),
        (vec![empty, far_edge], |i| {
            (2000 + i as u16, u16::MAX - i as u16)
        }),
    ] {
        let bytes = stream(&mut noise, rectangles, tile_at);
        let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
        let before = image.data().to_vec();
        DecodingContext::new()
            .decode(&mut image, &whole(128, 128), &mut ReadCursor::new(&bytes))
            .expect("a frame that draws nothing");
        assert!(image.data() == before.as_slice(), "no pixel drawn");
    }
}

/// An active stage as after a connection (no static channels), built
/// without a server.
fn active_stage() -> ActiveStage {
    ironrdp_session::ActiveStageBuilder {
        static_channels: StaticChannelSet::new(),
        user_channel_id: 1007,
        io_channel_id: 1003,
        message_channel_id: None,
        share_id: 0x0001_03ea,
        compression_type: None,
        enable_server_pointer: true,
        pointer_software_rendering: true,
    }
    .build()
}

/// A fast-path frame ([MS-RDPBCGR] 2.2.9.1.2) of `(update code, data)`
/// updates, each whole (not fragmented) and uncompressed.
fn fast_path(updates: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (code, data) in updates {
        body.push(code & 0x0f);
        body.extend(
            u16::try_from(data.len())
                .expect("small update")
                .to_le_bytes(),
        );
        body.extend(data);
    }
    let total = u16::try_from(body.len() + 3).expect("small frame");
    assert!(total < 0x8000);
    let mut frame = vec![0x00, 0x80 | (total >> 8) as u8, total as u8];
    frame.extend(body);
    frame
}

fn le32(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn le16(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A colour pointer update's body: `width`×`height`, hotspot (3, 4), the
/// XOR (colour) and AND masks as given.
fn pointer(width: u16, height: u16, xor: Vec<u8>, and: Vec<u8>) -> Vec<u8> {
    let mut update = le16(&[0, 3, 4, width, height]);
    update.extend(le16(&[
        u16::try_from(and.len()).expect("small"),
        u16::try_from(xor.len()).expect("small"),
    ]));
    update.extend(xor);
    update.extend(and);
    update
}

/// A set-surface-bits command: `destination` (left, top, right, bottom,
/// right and bottom exclusive) and a `width`×`height` bitmap in `codec`.
fn surface_bits(
    codec: u8,
    bpp: u8,
    destination: [u16; 4],
    width: u16,
    height: u16,
    data: Vec<u8>,
) -> Vec<u8> {
    let mut command = le16(&[0x0001]);
    command.extend(le16(&destination));
    command.extend([bpp, 0, 0, codec]);
    command.extend(le16(&[width, height]));
    command.extend(u32::try_from(data.len()).expect("small").to_le_bytes());
    command.extend(data);
    command
}

/// Sound updates of every kind the fast path carries, each small: the seeds
/// the damage starts from.
fn fast_path_seeds(noise: &mut Noise) -> Vec<Vec<u8>> {
    let random = |noise: &mut Noise, len: usize| -> Vec<u8> {
        (0..len).map(|_| noise.next_u64() as u8).collect()
    };
    // A bitmap update of one rectangle: `bpp`, `flags` (0x1 compressed, 0x400
    // no compression header), the given data for a 16×8 bitmap at (8, 8).
    let bitmap = |bpp: u16, flags: u16, data: Vec<u8>| -> Vec<u8> {
        let mut update = le16(&[0x0001, 1, 8, 8, 23, 15, 16, 8, bpp, flags]);
        update.extend(u16::try_from(data.len()).expect("small").to_le_bytes());
        update.extend(data);
        update
    };
    let frame_marker = |action: u16, id: u32| -> Vec<u8> {
        let mut command = le16(&[0x0004, action]);
        command.extend(id.to_le_bytes());
        command
    };
    let raw32 = random(noise, 16 * 8 * 4);
    let raw16 = random(noise, 16 * 8 * 2);
    let planar = {
        // A planar header (RLE, no alpha), then RLE-coded planes, loosely.
        let mut data = vec![0x30];
        data.extend(random(noise, 3 * 8 * 4));
        data
    };
    let interleaved = random(noise, 60);
    let palette = {
        let mut update = le16(&[0x0002, 0]);
        update.extend(16u32.to_le_bytes());
        update.extend(random(noise, 16 * 3));
        update
    };
    let xor24 = random(noise, 32 * 32 * 3);
    let and = random(noise, 32 * 32 / 8);
    let mut new_pointer = le16(&[32]);
    new_pointer.extend(pointer(32, 32, random(noise, 32 * 32 * 4), and.clone()));
    let rfx = sound_stream(noise);
    let mut rfx_bits = frame_marker(0, 1);
    rfx_bits.extend(surface_bits(3, 32, [8, 8, 136, 136], 128, 128, rfx));
    rfx_bits.extend(frame_marker(1, 1));
    vec![
        fast_path(&[(0x1, bitmap(32, 0x0400, raw32))]),
        fast_path(&[(0x1, bitmap(16, 0x0400, raw16))]),
        fast_path(&[(0x1, bitmap(32, 0x0401, planar))]),
        fast_path(&[(0x1, bitmap(16, 0x0401, interleaved.clone()))]),
        fast_path(&[(
            0x1,
            bitmap(24, 0x0001, {
                // The 8-byte compression header, then the data.
                let mut data =
                    le16(&[0, u16::try_from(interleaved.len()).expect("small"), 48, 384]);
                data.extend(interleaved);
                data
            }),
        )]),
        fast_path(&[(0x2, palette)]),
        fast_path(&[(0x9, pointer(32, 32, xor24, and))]),
        fast_path(&[(0xb, new_pointer)]),
        fast_path(&[
            (0xa, le16(&[0])),
            (0x8, le16(&[100, 50])),
            (0x5, Vec::new()),
        ]),
        fast_path(&[(0x6, Vec::new()), (0x3, Vec::new())]),
        fast_path(&[(
            0x4,
            surface_bits(0, 32, [8, 8, 24, 16], 16, 8, random(noise, 16 * 8 * 4)),
        )]),
        fast_path(&[(0x4, rfx_bits)]),
    ]
}

#[test]
fn damaged_fast_path_frames_give_updates_or_an_error_never_a_panic() {
    let mut noise = Noise(0x5eed_fa57_9a7b_0001);
    let seeds = fast_path_seeds(&mut noise);
    let mut stage = active_stage();
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
    takes_every_seed(&seeds, |seed| {
        stage.process(&mut image, Action::FastPath, seed, None)
    });
    survives_damage(
        &seeds,
        3000,
        &mut noise,
        "a damaged fast-path frame",
        |frame| stage.process(&mut image, Action::FastPath, frame, None),
    );
    // The stage still takes a sound frame.
    stage
        .process(&mut image, Action::FastPath, &seeds[0], None)
        .expect("a sound frame after the damaged ones");
}

/// Found by the test above: a surface-bits command whose destination is
/// empty or inverted (right <= left) underflowed its width, and a 32-bit
/// pointer whose colour exceeds its alpha (not premultiplied, as a server may
/// send) overflowed the blending over the desktop. The first is skipped, the
/// second saturates.
#[test]
fn an_empty_surface_destination_and_a_pointer_brighter_than_its_alpha_do_not_panic() {
    let mut stage = active_stage();
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
    for destination in [[8, 8, 8, 16], [0, 0, 0, 0], [20, 8, 10, 16]] {
        let frame = fast_path(&[(
            0x4,
            surface_bits(0, 32, destination, 16, 8, vec![0x7f; 16 * 8 * 4]),
        )]);
        stage
            .process(&mut image, Action::FastPath, &frame, None)
            .expect("an empty destination is skipped");
        assert!(
            image.data().iter().all(|&b| b == 0),
            "{destination:?} drew nothing"
        );
    }
    // A light grey square under a 32×32 pointer of colour 200 at alpha 100.
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
    let grey = fast_path(&[(
        0x4,
        surface_bits(0, 32, [32, 32, 96, 96], 64, 64, vec![0xc0; 64 * 64 * 4]),
    )]);
    stage
        .process(&mut image, Action::FastPath, &grey, None)
        .expect("a grey square");
    let mut bright = le16(&[32]);
    bright.extend(pointer(
        32,
        32,
        [200, 200, 200, 100].repeat(32 * 32),
        vec![0; 32 * 32 / 8],
    ));
    let frame = fast_path(&[(0xb, bright), (0x8, le16(&[40, 40]))]);
    stage
        .process(&mut image, Action::FastPath, &frame, None)
        .expect("the pointer is drawn");
}

/// An X.224 frame carrying `share` to the I/O channel: TPKT, the X.224 data
/// TPDU, an MCS Send Data Indication (PER).
fn x224_to_io_channel(share: &[u8]) -> Vec<u8> {
    let mut mcs = vec![0x68];
    mcs.extend((1007u16 - 1001).to_be_bytes());
    mcs.extend(1003u16.to_be_bytes());
    mcs.push(0x70);
    let len = u16::try_from(share.len()).expect("small");
    if len < 0x80 {
        mcs.push(len as u8);
    } else {
        mcs.extend((len | 0x8000).to_be_bytes());
    }
    mcs.extend(share);
    let total = u16::try_from(mcs.len() + 7).expect("small");
    let mut frame = vec![0x03, 0x00];
    frame.extend(total.to_be_bytes());
    frame.extend([0x02, 0xf0, 0x80]);
    frame.extend(mcs);
    frame
}

/// A share data PDU of type `pdu_type2` (TS_SHAREDATAHEADER, uncompressed).
fn share_data(pdu_type2: u8, data: &[u8]) -> Vec<u8> {
    let total = u16::try_from(18 + data.len()).expect("small");
    let mut pdu = le16(&[total, 0x17, 1002]);
    pdu.extend(0x0001_03eau32.to_le_bytes());
    pdu.extend([0, 1]);
    pdu.extend(le16(&[u16::try_from(data.len() + 4).expect("small")]));
    pdu.extend([pdu_type2, 0]);
    pdu.extend(le16(&[0]));
    pdu.extend(data);
    pdu
}

/// Sound slow-path PDUs a server sends while a session runs.
fn slow_path_seeds() -> Vec<Vec<u8>> {
    let mut monitors = le32(&[1]);
    monitors.extend(le32(&[0, 0, 127, 127, 1]));
    let mut ime = le16(&[0]);
    ime.extend(le32(&[1, 0]));
    let mut deactivate = le16(&[22, 0x16, 1002]);
    deactivate.extend(0x0001_03eau32.to_le_bytes());
    deactivate.extend(le16(&[4]));
    deactivate.extend(b"RDP\0");
    vec![
        x224_to_io_channel(&share_data(0x2f, &le32(&[0x0000_000c]))),
        x224_to_io_channel(&share_data(0x29, &le16(&[0, 2]))),
        x224_to_io_channel(&share_data(0x37, &monitors)),
        x224_to_io_channel(&share_data(0x2d, &ime)),
        x224_to_io_channel(&share_data(0x36, &le32(&[0x0400]))),
        x224_to_io_channel(&share_data(0x22, &le32(&[200, 800]))),
        x224_to_io_channel(&share_data(0x26, &[le32(&[2]), vec![0; 576]].concat())),
        x224_to_io_channel(&share_data(0x25, &[])),
        x224_to_io_channel(&deactivate),
    ]
}

#[test]
fn damaged_slow_path_pdus_give_outputs_or_an_error_never_a_panic() {
    let mut noise = Noise(0x5eed_510e_9a7b_0002);
    let seeds = slow_path_seeds();
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 128, 128);
    takes_every_seed(&seeds, |seed| {
        active_stage().process(&mut image, Action::X224, seed, None)
    });
    let mut stage = active_stage();
    survives_damage(
        &seeds,
        3000,
        &mut noise,
        "a damaged slow-path PDU",
        |frame| stage.process(&mut image, Action::X224, frame, None),
    );
    stage
        .process(&mut image, Action::X224, &seeds[0], None)
        .expect("a sound PDU after the damaged ones");
}

/// Found while writing the test above: a Play Sound PDU (Windows sends one
/// when the remote desktop beeps and sound is not redirected), a Set Keyboard
/// IME Status PDU or a Status Info PDU ended the session as "unhandled". They
/// ask nothing of this client and are now let pass.
#[test]
fn a_beep_an_ime_state_or_a_status_report_does_not_end_the_session() {
    let mut stage = active_stage();
    let mut image = DecodedImage::new(PixelFormat::RgbA32, 64, 64);
    for (pdu_type2, data, what) in [
        (0x22, le32(&[200, 800]), "a beep"),
        (
            0x2d,
            [le16(&[0]), le32(&[1, 0])].concat(),
            "the IME's state",
        ),
        (0x36, le32(&[0x0400]), "a status report"),
    ] {
        let outputs = stage
            .process(
                &mut image,
                Action::X224,
                &x224_to_io_channel(&share_data(pdu_type2, &data)),
                None,
            )
            .unwrap_or_else(|e| panic!("{what} ended the session: {e}"));
        assert!(outputs.is_empty(), "{what}: nothing to do");
    }
}

/// A clipboard (cliprdr) PDU: type, flags, the data's length, the data.
fn cliprdr(msg_type: u16, flags: u16, data: &[u8]) -> Vec<u8> {
    let mut pdu = le16(&[msg_type, flags]);
    pdu.extend(u32::try_from(data.len()).expect("small").to_le_bytes());
    pdu.extend(data);
    pdu
}

/// What a server sends on the clipboard channel, in the order it does: its
/// capabilities, monitor ready, a format list (Unicode text), a request for
/// our text, our format list accepted, and its text.
fn clipboard_seeds() -> Vec<Vec<u8>> {
    let capabilities = [
        le16(&[1, 0, 1, 12]),
        2u32.to_le_bytes().to_vec(),
        0u32.to_le_bytes().to_vec(),
    ]
    .concat();
    let formats = [13u32.to_le_bytes().to_vec(), vec![0; 32]].concat();
    let text: Vec<u8> = "hello, clipboard\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    vec![
        cliprdr(0x0007, 0, &capabilities),
        cliprdr(0x0001, 0, &[]),
        cliprdr(0x0002, 0, &formats),
        cliprdr(0x0004, 0, &13u32.to_le_bytes()),
        cliprdr(0x0003, 0x0001, &[]),
        cliprdr(0x0005, 0x0001, &text),
    ]
}

#[test]
fn damaged_clipboard_pdus_give_messages_or_an_error_never_a_panic() {
    use ironrdp_cliprdr::CliprdrClient;
    use ironrdp_svc::SvcProcessor as _;

    let backend = super::clipboard::Backend::default();
    let events = std::sync::Arc::clone(&backend.events);
    let mut channel = CliprdrClient::new(Box::new(backend));
    let seeds = clipboard_seeds();
    takes_every_seed(&seeds, |seed| channel.process(seed));
    // The sound exchange reached the backend: the server's text among it.
    let seen = std::mem::take(&mut *lock(&events));
    assert!(
        seen.contains(&super::clipboard::ClipEvent::DataResponse(Some(
            "hello, clipboard".to_owned()
        ))),
        "{seen:?}"
    );
    let mut noise = Noise(0x5eed_c11b_0a4d_0003);
    survives_damage(&seeds, 3000, &mut noise, "a damaged clipboard PDU", |pdu| {
        channel.process(pdu)
    });
}
