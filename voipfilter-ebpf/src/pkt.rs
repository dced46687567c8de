//! The XDP frame as a [`Bytes`] window: every load is checked against `data_end`.

use aya_ebpf::{macros::map, maps::PerCpuArray, programs::XdpContext};
use voipfilter_common::Bytes;

/// The slot through which [`Bytes::launder`] passes values.
#[map]
static LAUNDER: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

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
        let p = self.start + off;
        // Pointer comparison against data_end: the form the verifier follows (blixt's ptr_at).
        // For one-byte reads LLVM would rewrite `p + 1 > end` into `p >= end`, from which the
        // verifier learns no range when `p` has a variable offset ("offset is outside of the
        // packet"). Hiding the constant 1 from the optimiser keeps `p + 1 > end`; the verifier
        // still sees the 1 (it tracks constants through the stack).
        let size = if core::mem::size_of::<T>() == 1 { core::hint::black_box(1) } else { core::mem::size_of::<T>() };
        if p + size > self.end {
            return None;
        }
        // SAFETY: bounds checked above; T is an integer or byte array; the read is unaligned.
        Some(unsafe { core::ptr::read_unaligned(p as *const T) })
    }

    #[inline(always)]
    fn launder(&self, x: usize, max: usize) -> Option<usize> {
        let slot = LAUNDER.get_ptr_mut(0)?;
        // SAFETY: this CPU's slot. The volatile accesses keep the round trip (the point: the
        // verifier knows nothing of a value read back from a map).
        let y = unsafe {
            core::ptr::write_volatile(slot, x as u64);
            core::ptr::read_volatile(slot) as usize
        };
        (y <= max).then_some(y)
    }
}
