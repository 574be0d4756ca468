"""Parameter counts of the reference models (docs/reference-cases.md), derived by hand per framework.

Per layer and direction, with input width I, H units and G gate blocks (rnn 1, gru 3, lstm 4):
- Keras:     G*H*(I + H + 1); GRU (reset_after=True, its default) G*H*(I + H + 2)
- PyTorch:   G*H*(I + H + 2)                 (two bias vectors, b_ih and b_hh, for every cell)
- TF 1.x:    G*H*(I + H + 1), GRUCell included (it resets before its matmul: one bias per block)
A bidirectional layer doubles that and feeds 2H to the next layer. Head: Dense(10) on the last
layer's output: (H_last * directions) * 10 + 10.
"""

# Keras: the counts the tutorials report (docs/reference-cases.md, D1-D3) and the same formula for the others.
KERAS = {
    "A1": 512 * (28 + 512 + 1) + 512 * (512 + 512 + 1) + 512 * 10 + 10,  # 276,992 + 524,800 + 5,130
    "A2": 3 * 256 * (28 + 256 + 2) + 3 * 256 * (256 + 256 + 2) + 2_570,  # 219,648 + 394,752 + 2,570
    "A3": 4 * 256 * (28 + 256 + 1) + 4 * 256 * (256 + 256 + 1) + 2_570,  # 291,840 + 525,312 + 2,570
    "A4": 2 * 4 * 256 * (28 + 256 + 1) + 2 * 4 * 256 * (512 + 256 + 1) + 512 * 10 + 10,
    "B1": 128 * (28 + 128 + 1) + 128 * (128 + 128 + 1) + 1_290,
    "B2": 3 * 128 * (28 + 128 + 2) + 3 * 128 * (128 + 128 + 2) + 1_290,
    "B3": 4 * 128 * (28 + 128 + 1) + 4 * 128 * (128 + 128 + 1) + 1_290,
    "C": 4 * 128 * (28 + 128 + 1) + 1_290,
    "D1": 206_858,  # 72,960 + 131,328 + 2,570, as tutorial D reports
    "D2": 819_722,  # 291,840 + 525,312 + 2,570
    "D3": 369_162,  # 219,648 + 148,224 + 1,290
}
# PyTorch: +G*H per layer and direction against Keras for rnn and lstm (b_hh); GRU equal.
TORCH = {
    "A1": 512 * (28 + 512 + 2) + 512 * (512 + 512 + 2) + 5_130,  # 807,946
    "A2": KERAS["A2"],
    "A3": 4 * 256 * (28 + 256 + 2) + 4 * 256 * (256 + 256 + 2) + 2_570,  # 821,770
    "A4": 2 * 4 * 256 * (28 + 256 + 2) + 2 * 4 * 256 * (512 + 256 + 2) + 5_130,  # 2,167,818
    "B1": 128 * (28 + 128 + 2) + 128 * (128 + 128 + 2) + 1_290,  # 54,538
    "B2": 3 * 128 * (28 + 128 + 2) + 3 * 128 * (128 + 128 + 2) + 1_290,  # 161,034
    "B3": 4 * 128 * (28 + 128 + 2) + 4 * 128 * (128 + 128 + 2) + 1_290,  # 214,282
    "C": 4 * 128 * (28 + 128 + 2) + 1_290,  # 82,186
    "D1": 256 * (28 + 256 + 2) + 256 * (256 + 256 + 2) + 2_570,  # 207,370
    # D2 and D3 use relu GRU/LSTM: not expressible in PyTorch
}
# TF 1.x: Keras' counts for rnn and lstm; GRU one bias per block (3H fewer per layer than Keras).
TF1 = {
    "C": 81_674,  # 80,384 + 1,290, BasicLSTMCell(128) + the hand-made W (128x10) and b (10)
    "D1": KERAS["D1"],
    "D3": 3 * 256 * (28 + 256 + 1) + 3 * 128 * (256 + 128 + 1) + 1_290,  # 368,010 = 369,162 - 3*256 - 3*128
}


def expected(adapter: str) -> dict[str, int]:
    if adapter == "tf1-graph":
        return TF1
    return TORCH if adapter.startswith("torch") else KERAS
