//! RemoteFX streams as a server sends them, for the RDP tests: the codec's
//! headers and frames, encoded with IronRDP's own PDU types.

use ironrdp_pdu::codecs::rfx::{
    Block, ChannelsPdu, CodecChannel, CodecVersionsPdu, ContextPdu, EntropyAlgorithm,
    FrameBeginPdu, FrameEndPdu, OperatingMode, Quant, RegionPdu, RfxChannel, RfxRectangle, SyncPdu,
    Tile, TileSetPdu,
};
use ironrdp_pdu::geometry::InclusiveRectangle;

pub(super) fn encode(blocks: &[Block<'_>]) -> Vec<u8> {
    blocks
        .iter()
        .flat_map(|block| ironrdp_core::encode_vec(block).expect("encode an RFX block"))
        .collect()
}

/// What a server sends first: sync, versions, one channel of `width`×`height`,
/// the codec context (RLGR3).
pub(super) fn headers(width: i16, height: i16) -> Vec<u8> {
    encode(&[
        Block::Sync(SyncPdu),
        Block::CodecVersions(CodecVersionsPdu),
        Block::Channels(ChannelsPdu(vec![RfxChannel { width, height }])),
        Block::CodecChannel(CodecChannel::Context(ContextPdu {
            flags: OperatingMode::empty(),
            entropy_algorithm: EntropyAlgorithm::Rlgr3,
        })),
    ])
}

/// Frame `index`: its region `rectangles`, then `tiles` quantized by `quants`.
pub(super) fn frame(
    index: u32,
    rectangles: Vec<RfxRectangle>,
    quants: Vec<Quant>,
    tiles: Vec<Tile<'_>>,
) -> Vec<u8> {
    encode(&[
        Block::CodecChannel(CodecChannel::FrameBegin(FrameBeginPdu {
            index,
            number_of_regions: 1,
        })),
        Block::CodecChannel(CodecChannel::Region(RegionPdu { rectangles })),
        Block::CodecChannel(CodecChannel::TileSet(TileSetPdu {
            entropy_algorithm: EntropyAlgorithm::Rlgr3,
            quants,
            tiles,
        })),
        Block::CodecChannel(CodecChannel::FrameEnd(FrameEndPdu)),
    ])
}

/// The whole of a `width`×`height` desktop.
pub(super) fn whole(width: u16, height: u16) -> InclusiveRectangle {
    InclusiveRectangle {
        left: 0,
        top: 0,
        right: width - 1,
        bottom: height - 1,
    }
}
