// fpyga's own AXI4-Stream side-channel types for sw_emu kernels, for toolchains whose HLS headers
// (hls4ml's ap_types) ship none. Written from the fields Vitis HLS documents for
// `ap_axiu<D, U, TI, TD>` / `ap_axis<D, U, TI, TD>` (UG1399, "AXI4-Stream Interfaces with Side-
// Channels"): TDATA of D bits, TKEEP and TSTRB of D/8 bits, TUSER of U bits, TLAST, TID of TI
// bits and TDEST of TD bits. fpyga's toolchains put this directory after the HLS headers on the
// include path, so an installed Vitis HLS's own header is used when there is one.
#ifndef FPYGA_AP_AXI_SDATA_H
#define FPYGA_AP_AXI_SDATA_H

#include "ap_int.h"

namespace fpyga_axis {

/// A side channel of N bits; zero-width channels (U, TI or TD of 0, the common case) hold
/// nothing and read as 0, since ap_uint<0> is not a valid type.
template <int N>
struct channel {
  typedef ap_uint<N> type;
};

struct empty_channel {
  empty_channel() {}
  template <typename T>
  empty_channel(const T&) {}
  template <typename T>
  empty_channel& operator=(const T&) {
    return *this;
  }
  operator unsigned() const { return 0; }
  bool operator==(const empty_channel&) const { return true; }
};

template <>
struct channel<0> {
  typedef empty_channel type;
};


/// One beat: TDATA of type Data (D bits), then the side channels.
template <typename Data, int D, int U, int TI, int TD>
struct beat {
  Data data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  typename channel<U>::type user;
  ap_uint<1> last;
  typename channel<TI>::type id;
  typename channel<TD>::type dest;
};

}  // namespace fpyga_axis

/// An AXI4-Stream beat with unsigned TDATA of D bits.
template <int D, int U, int TI, int TD>
struct ap_axiu : fpyga_axis::beat<ap_uint<D>, D, U, TI, TD> {};

/// An AXI4-Stream beat with signed TDATA of D bits.
template <int D, int U, int TI, int TD>
struct ap_axis : fpyga_axis::beat<ap_int<D>, D, U, TI, TD> {};

#endif  // FPYGA_AP_AXI_SDATA_H
