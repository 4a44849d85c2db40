// AXI4-Stream side channels between kernels: axis_packetize cuts a buffer into packets of
// `packet` elements on an hls::stream<ap_axiu<32, 4, 2, 3>>, setting TLAST on each packet's last
// beat and TUSER/TID/TDEST/TKEEP per beat; axis_collect stores what arrives, data and side channels
// apart, so the host checks that every channel crossed the FIFO as written.
#include <ap_axi_sdata.h>
#include <hls_stream.h>

typedef ap_axiu<32, 4, 2, 3> beat;

extern "C" {

void axis_packetize(const int* in, hls::stream<beat>& out, int n, int packet) {
#pragma HLS INTERFACE m_axi port = in offset = slave bundle = gmem
#pragma HLS INTERFACE axis port = out
  for (int i = 0; i < n; ++i) {
    beat b;
    b.data = in[i];
    b.keep = i % 2 ? 0xF : 0x3;
    b.strb = 0xF;
    b.user = i % 16;
    b.id = (i / packet) % 4;
    b.dest = 5;
    b.last = (i + 1) % packet == 0 || i + 1 == n;
    out.write(b);
  }
}

// side[i] packs the channels of beat i: last (bit 0), user (bits 1-4), id (5-6), dest (7-9),
// keep (10-13).
void axis_collect(hls::stream<beat>& in, int* data, int* side, int n) {
#pragma HLS INTERFACE axis port = in
#pragma HLS INTERFACE m_axi port = data offset = slave bundle = gmem
#pragma HLS INTERFACE m_axi port = side offset = slave bundle = gmem
  for (int i = 0; i < n; ++i) {
    const beat b = in.read();
    data[i] = b.data.to_int();
    side[i] = static_cast<int>(b.last) | static_cast<int>(b.user) << 1 |
              static_cast<int>(b.id) << 5 | static_cast<int>(b.dest) << 7 |
              static_cast<int>(b.keep) << 10;
  }
}
}
