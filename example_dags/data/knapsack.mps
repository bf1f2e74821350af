NAME          KNAPSACK
* A 0/1 knapsack as a MILP in free MPS: pick items (value, weight) under a capacity of 10.
* Best: items 2 and 4, value 21 (objective -21, as the costs are negated values).
ROWS
 N  COST
 L  CAP
COLUMNS
    MARKER    'MARKER'     'INTORG'
    X1        COST         -10.0        CAP          5.0
    X2        COST         -13.0        CAP          6.0
    X3        COST         -7.0         CAP          4.0
    X4        COST         -8.0         CAP          3.0
    MARKER    'MARKER'     'INTEND'
RHS
    RHS       CAP          10.0
BOUNDS
 UP BND       X1           1
 UP BND       X2           1
 UP BND       X3           1
 UP BND       X4           1
ENDATA
