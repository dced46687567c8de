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

/// `p + 1`, computed where LLVM cannot see it (one BPF instruction).
#[inline(always)]
fn plus_one(mut p: usize) -> usize {
    // SAFETY: plain register arithmetic.
    unsafe { core::arch::asm!("{0} += 1", inout(reg) p, options(pure, nomem, nostack, preserves_flags)) };
    p
}

/// Reads a `T` at packet address `p`, in one load instruction for 2, 4 and 8 bytes (two for
/// 16). `read_unaligned` would load byte by byte and reassemble with shifts (the BPF target
/// assumes that wider loads must be aligned), which made the parser several times longer.
/// The loads are BPF assembly: packet memory may be unaligned, which the verifier and the
/// JIT accept on architectures with efficient unaligned access (x86-64, arm64), while a Rust
/// read through a misaligned `*const u32` would be undefined behaviour.
///
/// # Safety
/// `[p, p + size_of::<T>())` is inside the packet; every bit pattern is a valid `T`.
#[inline(always)]
unsafe fn read<T: Copy>(p: usize) -> T {
    // SAFETY (all arms): the value has exactly size_of::<T>() bytes (caller's contract).
    unsafe {
        match core::mem::size_of::<T>() {
            2 => core::mem::transmute_copy(&(ld::<2>(p) as u16)),
            4 => core::mem::transmute_copy(&(ld::<4>(p) as u32)),
            8 => core::mem::transmute_copy(&ld::<8>(p)),
            16 => core::mem::transmute_copy(&[ld::<8>(p), ld::<8>(p + 8)]),
            _ => core::ptr::read_unaligned(p as *const T),
        }
    }
}

/// One `N`-byte load (N = 2, 4 or 8) at `p`, zero-extended.
#[inline(always)]
unsafe fn ld<const N: usize>(p: usize) -> u64 {
    let v: u64;
    // SAFETY: the caller checked the bounds; reads packet memory only.
    unsafe {
        match N {
            2 => core::arch::asm!("{0} = *(u16 *)({1} + 0)", lateout(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)),
            4 => core::arch::asm!("{0} = *(u32 *)({1} + 0)", lateout(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)),
            _ => core::arch::asm!("{0} = *(u64 *)({1} + 0)", lateout(reg) v, in(reg) p, options(readonly, nostack, preserves_flags)),
        }
    }
    v
}

impl Bytes for Packet {
    #[inline(always)]
    fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        // No-wrap additions (`add nuw`): LLVM may then drop the check of a load that an
        // earlier, longer check already covers (the verifier follows the remaining one).
        // SAFETY: `start` is a kernel address of a packet buffer and `off` a packet offset
        // (below 64 KiB): the sums cannot wrap.
        let p = unsafe { self.start.unchecked_add(off) };
        let size = core::mem::size_of::<T>();
        // Pointer comparison against data_end: the form the verifier follows (blixt's ptr_at).
        // For one-byte reads LLVM would rewrite `p + 1 > end` into `p >= end`, from which the
        // verifier learns no range when `p` has a variable offset ("offset is outside of the
        // packet"). `plus_one` adds the 1 in an asm statement, so LLVM keeps `p + 1 > end`
        // (and, unlike a `black_box`, without a stack round trip).
        let last = if size == 1 { plus_one(p) } else { unsafe { p.unchecked_add(size) } };
        if last > self.end {
            return None;
        }
        // SAFETY: bounds checked above; T is an integer or byte array.
        Some(unsafe { read::<T>(p) })
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
