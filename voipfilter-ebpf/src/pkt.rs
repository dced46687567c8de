//! The XDP frame as a [`Bytes`] window: every load is checked against `data_end`.

use aya_ebpf::programs::XdpContext;
use voipfilter_common::Bytes;

pub struct Packet {
    start: usize,
    end: usize,
}

impl Packet {
    #[inline(always)]
    pub fn new(ctx: &XdpContext) -> Self {
        Packet { start: ctx.data(), end: ctx.data_end() }
    }

    /// Frame length in bytes (for the byte counters).
    #[inline(always)]
    pub fn frame_len(&self) -> u64 {
        (self.end - self.start) as u64
    }
}

impl Bytes for Packet {
    #[inline(always)]
    fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        // Pointer comparison against data_end: the form the verifier follows (blixt's ptr_at).
        let last = self.start + off + core::mem::size_of::<T>();
        // For one-byte reads LLVM rewrites `p + 1 > end` into `p >= end`, from which the
        // verifier learns no range when `p` has a variable offset ("offset is outside of the
        // packet"). Hiding `p + 1` from the optimiser keeps the comparison in the form the
        // verifier follows. Wider reads keep a constant part in the pointer and need no help.
        let last = if core::mem::size_of::<T>() == 1 { core::hint::black_box(last) } else { last };
        if last > self.end {
            return None;
        }
        // SAFETY: bounds checked above; T is an integer or byte array; the read is unaligned.
        Some(unsafe { core::ptr::read_unaligned((last - core::mem::size_of::<T>()) as *const T) })
    }
}
