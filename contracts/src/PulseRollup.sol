// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Built by contracts/build.cjs (scripts/contracts build) into contracts/out/PulseRollup.json.
pragma solidity ^0.8.20;

/// @title PulseRollup: Pulse's chain of proven state roots on L1
/// @notice Holds the current state root of the Pulse rollup and moves it forward one batch at a
///         time. A batch is a chain of chunks; each chunk carries a Groth16 proof (J. Groth, "On
///         the Size of Pairing-based Non-interactive Arguments", EUROCRYPT 2016) that the chunk
///         circuit took the state from `rootBefore` to `rootAfter` with public data committed to
///         by `commitment`. All proofs of a batch are checked in one pairing with random linear
///         combination (batch verification; see `commitBatch`).
///         The chunk circuit has a fourth public input, the deployment id `deploymentId`
///         (keccak256 of the chain id and this contract's address, mod r), which every signed
///         transaction commits to. The contract fixes that input to its own id, so proofs over
///         transactions signed for another deployment (another chain, or another contract on
///         this one) never verify here.
/// @dev The verifying key is a constructor argument held in immutables, so the bytecode is the
///      same for every setup and reading the key costs no storage access. Encoding, shared
///      with circuits/templates/Groth16Verifier.sol.tmpl and `proof_to_calldata` in
///      circuits/src/solidity.rs: a G1 point is (x, y); a G2 point is
///      [[x_im, x_re], [y_im, y_re]], the coefficient of i (c1) before the real one (c0), as
///      the EIP-197 precompile expects; the point at infinity is (0, 0).
///
///      Verifying key layout (`vk` in the constructor), 24 words:
///        [0..2)   alpha (G1)          [2..6)   beta (G2)
///        [6..10)  gamma (G2)          [10..14) delta (G2)
///        [14..24) IC_0..IC_4 (G1), IC_j multiplying public input j (IC_0 the constant 1).
///      Proof layout (`Chunk.proof`, `verifyProof`), 8 words: A (G1), B (G2), C (G1).
///      Public inputs of the circuit, in order: state root before, state root after,
///      public-data commitment, deployment id. The operator supplies the first three; the
///      constructor folds the fourth into the key's constant point,
///        IC_0' = IC_0 + deploymentId * IC_4,
///      which it stores as IC_0 and uses for every check. `verifyingKey()` returns that
///      specialised 22-word key (IC_0' and IC_1..IC_3): the Groth16 key of this deployment's
///      chunk proofs over their three operator-supplied inputs.
///      Apart from IC_0 and IC_4, whose ecMul/ecAdd in the constructor fail unless they are
///      curve points (`InvalidVerifyingKey`), the key is not validated: a key with another
///      point off the curve makes every batch fail with `InvalidBatchProof`.
contract PulseRollup {
    /// @notice One proven chunk: its three public inputs and its Groth16 proof.
    /// @param rootBefore State root before the chunk (public input 0).
    /// @param rootAfter State root after the chunk (public input 1).
    /// @param commitment Commitment to the chunk's public data (public input 2).
    /// @param proof a.x, a.y, b.x_im, b.x_re, b.y_im, b.y_re, c.x, c.y.
    struct Chunk {
        uint256 rootBefore;
        uint256 rootAfter;
        uint256 commitment;
        uint256[8] proof;
    }

    /// @notice Only the owner may do this; `caller` is not the owner.
    error NotOwner(address caller);

    /// @notice Only an operator may commit batches; `caller` is not one.
    error NotOperator(address caller);

    /// @notice The batch number must be the stored one plus one (`expected`); `given` is a
    ///         replayed, stale or skipped batch.
    error UnexpectedBatchNumber(uint256 expected, uint256 given);

    /// @notice A batch needs at least one chunk.
    error EmptyBatch();

    /// @notice A batch holds at most `max` chunks; this one has `given`.
    error TooManyChunks(uint256 given, uint256 max);

    /// @notice The first chunk does not start from the stored state root: the batch was built
    ///         on another state (`stored` is the root on chain, `given` the chunk's rootBefore).
    error WrongStartRoot(uint256 stored, uint256 given);

    /// @notice Chunk `chunk` does not start where chunk `chunk - 1` ended.
    error BrokenRootChain(uint256 chunk);

    /// @notice Public input `input` (0 root before, 1 root after, 2 commitment) of chunk
    ///         `chunk` is not below the scalar field modulus r.
    error PublicInputNotInField(uint256 chunk, uint256 input);

    /// @notice The batch's proofs do not verify: a proof is wrong, has a coordinate not below
    ///         the base field modulus q, or has a point that is not on the curve (or, for B,
    ///         not in the prime-order subgroup). Also what a transaction sees that runs out of
    ///         gas inside a precompile.
    error InvalidBatchProof();

    /// @notice The zero address cannot be the owner, an operator or a committee member.
    error ZeroAddress();

    /// @notice The batch has `given` valid attestations of the data-availability committee;
    ///         `needed` (the threshold) are required.
    error NotEnoughAttestations(uint256 given, uint256 needed);

    /// @notice Attestation `index` is not 65 bytes (r, s, v) with v 27 or 28 and s in the
    ///         lower half of the curve order, or the whole attestation list is not a multiple
    ///         of 65 bytes (then `index` is the count of whole ones).
    error MalformedAttestation(uint256 index);

    /// @notice Attestation `index` was signed by `signer`, who is not a committee member:
    ///         a non-member's signature, or a member's over other data (another batch,
    ///         another CID, other commitments, another deployment) recovers to some
    ///         unrelated address.
    error NotACommitteeMember(uint256 index, address signer);

    /// @notice Attestation `index` is not from a signer above the one before it:
    ///         attestations are sorted by signer address, each signer at most once.
    error AttestationsNotSorted(uint256 index);

    /// @notice A committee of `members` members with threshold `threshold` is not allowed:
    ///         the threshold is 1 to the member count (both 0 for no committee), at most
    ///         `MAX_MEMBERS` members, each a distinct non-zero address.
    error InvalidCommittee(uint256 members, uint256 threshold);

    /// @notice The genesis state root is not below the scalar field modulus r, so no proof
    ///         could ever start from it.
    error GenesisRootNotInField();

    /// @notice IC_0 or IC_4 of the verifying key is not a point on the curve, so the key
    ///         cannot be specialised to this deployment.
    error InvalidVerifyingKey();

    /// @notice Batch `batchNumber` moved the state root to `newRoot`.
    /// @param batchNumber The new batch number (1 for the first batch after genesis).
    /// @param newRoot The state root after the batch, the last chunk's rootAfter.
    /// @param dataCid Where the batch's public data is stored (an IPFS CID).
    /// @param txCount Number of transactions in the batch, as the operator reports it.
    /// @param chunks Number of chunks, hence of proofs, in the batch.
    event BatchCommitted(
        uint256 indexed batchNumber,
        uint256 newRoot,
        string dataCid,
        uint256 txCount,
        uint256 chunks
    );

    /// @notice The data-availability committee is now `members` with `threshold`
    ///         attestations required per batch (no committee, and none required, when empty).
    /// @param epoch Counts committee changes, 1 for the constructor's committee.
    event CommitteeChanged(uint256 indexed epoch, address[] members, uint256 threshold);

    /// @notice `operator` may now commit batches.
    event OperatorAdded(address indexed operator);

    /// @notice `operator` may no longer commit batches.
    event OperatorRemoved(address indexed operator);

    /// @notice The owner changed from `previousOwner` (zero at deployment) to `newOwner`.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice The BN254 scalar field modulus r: public inputs must be below it.
    uint256 internal constant SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice The BN254 base field modulus q: coordinates must be below it.
    uint256 internal constant BASE_FIELD =
        21888242871839275222246405745257275088696311157297823662689037894645226208583;

    /// @notice Number of public inputs of a chunk proof that the operator supplies (the
    ///         circuit's fourth, the deployment id, is fixed by the contract).
    uint256 public constant NUM_PUBLIC_INPUTS = 3;

    /// @notice Most chunks a batch may hold. A batch of 64 costs about 3.6M gas with its
    ///         calldata, well inside a block, and bounds the memory the pairing input takes.
    uint256 public constant MAX_CHUNKS = 64;

    /// @notice Most members a data-availability committee has.
    uint256 public constant MAX_MEMBERS = 64;

    /// @notice Domain tag of an attestation digest (see `attestationDigest`).
    bytes32 public constant ATTESTATION_TAG = keccak256("PulseRollup.attestation.v1");

    /// @dev Bytes of one attestation: r, s, v.
    uint256 private constant ATTESTATION_BYTES = 65;

    /// @dev Half the secp256k1 group order: signatures with a larger s are refused (each
    ///      signature then has one encoding).
    uint256 private constant HALF_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @dev Bytes of one ABI-encoded `Chunk`: 3 inputs and 8 proof words.
    uint256 private constant CHUNK_BYTES = 0x160;

    /// @dev Bytes of one pair of the pairing input: a G1 point then a G2 point.
    uint256 private constant PAIR_BYTES = 0xc0;

    /// @dev The batch check's memory starts with the sums s_0..s_3 (4 words, see
    ///      `_pairingCheck`) and a scratch area for ecMul/ecAdd (4 words); the pairing input
    ///      follows.
    uint256 private constant PAIRS_AT = 0x100;

    /// @notice This deployment's id: uint256(keccak256(abi.encode(block.chainid,
    ///         address(this)))) mod r, fixed at construction. Clients sign every transaction
    ///         over it (the last input of the Poseidon message), and chunk proofs take it as
    ///         their fourth public input.
    uint256 public immutable deploymentId;

    /// @notice Identity of the verifying key: the SHA-256 of its compressed ark-serialize
    ///         encoding, the `vk_hash` of Pulse's key manifests and proof files (of the setup's
    ///         24-word key). Supplied by the deployer and not checked against the key on chain.
    bytes32 public immutable vkHash;

    // Verifying key. G2 coordinates: X_IM is x.c1, X_RE is x.c0 (likewise for y).
    uint256 internal immutable ALPHA_X;
    uint256 internal immutable ALPHA_Y;

    uint256 internal immutable BETA_X_IM;
    uint256 internal immutable BETA_X_RE;
    uint256 internal immutable BETA_Y_IM;
    uint256 internal immutable BETA_Y_RE;

    uint256 internal immutable GAMMA_X_IM;
    uint256 internal immutable GAMMA_X_RE;
    uint256 internal immutable GAMMA_Y_IM;
    uint256 internal immutable GAMMA_Y_RE;

    uint256 internal immutable DELTA_X_IM;
    uint256 internal immutable DELTA_X_RE;
    uint256 internal immutable DELTA_Y_IM;
    uint256 internal immutable DELTA_Y_RE;

    // IC_0 + deploymentId * IC_4: the constant point of this deployment's proofs.
    uint256 internal immutable IC0_X;
    uint256 internal immutable IC0_Y;
    uint256 internal immutable IC1_X;
    uint256 internal immutable IC1_Y;
    uint256 internal immutable IC2_X;
    uint256 internal immutable IC2_Y;
    uint256 internal immutable IC3_X;
    uint256 internal immutable IC3_Y;

    /// @notice The state root after the latest batch (the genesis root before the first).
    uint256 public stateRoot;

    /// @notice Number of the latest batch; 0 at genesis.
    uint256 public batchNumber;

    /// @notice May add and remove operators and hand the contract over.
    address public owner;

    /// @notice Addresses allowed to commit batches.
    mapping(address => bool) public isOperator;

    /// @notice Members of the data-availability committee (hospitals that hold every
    ///         batch's encrypted data and attest to it).
    mapping(address => bool) public isMember;

    /// @notice Attestations of distinct members `commitBatch` requires; 0 when there is no
    ///         committee.
    uint256 public threshold;

    /// @notice Counts committee changes (1 after the constructor's).
    uint256 public committeeEpoch;

    /// @dev The members, in the order they were given.
    address[] private members;

    /// @param genesisRoot The state root before the first batch; below r.
    /// @param vk The setup's verifying key, 24 words in the layout of the contract's
    ///        documentation; IC_4 is folded into IC_0 with this deployment's id.
    /// @param vkHash_ The key's identity, stored as `vkHash`.
    /// @param owner_ The first owner.
    /// @param operators_ The first operators (may be empty).
    /// @param committee_ The data-availability committee's members (empty for none).
    /// @param threshold_ Attestations required per batch: 1 to the member count, 0 for no
    ///        committee.
    constructor(
        uint256 genesisRoot,
        uint256[24] memory vk,
        bytes32 vkHash_,
        address owner_,
        address[] memory operators_,
        address[] memory committee_,
        uint256 threshold_
    ) {
        if (genesisRoot >= SCALAR_FIELD) {
            revert GenesisRootNotInField();
        }
        if (owner_ == address(0)) {
            revert ZeroAddress();
        }
        ALPHA_X = vk[0];
        ALPHA_Y = vk[1];
        BETA_X_IM = vk[2];
        BETA_X_RE = vk[3];
        BETA_Y_IM = vk[4];
        BETA_Y_RE = vk[5];
        GAMMA_X_IM = vk[6];
        GAMMA_X_RE = vk[7];
        GAMMA_Y_IM = vk[8];
        GAMMA_Y_RE = vk[9];
        DELTA_X_IM = vk[10];
        DELTA_X_RE = vk[11];
        DELTA_Y_IM = vk[12];
        DELTA_Y_RE = vk[13];
        uint256 id = uint256(keccak256(abi.encode(block.chainid, address(this)))) % SCALAR_FIELD;
        deploymentId = id;
        (uint256 ic0x, uint256 ic0y) = _foldDeployment(vk[14], vk[15], vk[22], vk[23], id);
        IC0_X = ic0x;
        IC0_Y = ic0y;
        IC1_X = vk[16];
        IC1_Y = vk[17];
        IC2_X = vk[18];
        IC2_Y = vk[19];
        IC3_X = vk[20];
        IC3_Y = vk[21];
        vkHash = vkHash_;

        stateRoot = genesisRoot;
        owner = owner_;
        emit OwnershipTransferred(address(0), owner_);
        for (uint256 i = 0; i < operators_.length; ++i) {
            _addOperator(operators_[i]);
        }
        _setCommittee(committee_, threshold_);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) {
            revert NotOwner(msg.sender);
        }
        _;
    }

    /// @notice Lets `operator` commit batches. Owner only.
    function addOperator(address operator) external onlyOwner {
        _addOperator(operator);
    }

    /// @notice Stops `operator` from committing batches. Owner only.
    function removeOperator(address operator) external onlyOwner {
        isOperator[operator] = false;
        emit OperatorRemoved(operator);
    }

    /// @notice Hands the contract to `newOwner`. Owner only.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) {
            revert ZeroAddress();
        }
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// @notice Replaces the data-availability committee (members and threshold); emits
    ///         `CommitteeChanged`. Owner only. Batches not yet committed then need
    ///         attestations from the new members.
    function setCommittee(address[] calldata newMembers, uint256 newThreshold)
        external
        onlyOwner
    {
        _setCommittee(newMembers, newThreshold);
    }

    /// @notice The committee's members and threshold.
    function committee() external view returns (address[] memory, uint256) {
        return (members, threshold);
    }

    /// @notice The digest a committee member signs to attest batch `batch`'s data:
    ///           keccak256(abi.encode(ATTESTATION_TAG, deploymentId, batch,
    ///                                keccak256(bytes(dataCid)),
    ///                                keccak256(abi.encodePacked(commitments))))
    ///         with the chunks' commitments in order. The member signs it as an Ethereum
    ///         signed message (EIP-191: keccak256("\x19Ethereum Signed Message:\n32" ||
    ///         digest)), after it has fetched, decrypted, checked against these commitments
    ///         and stored the data.
    function attestationDigest(uint256 batch, string calldata dataCid, uint256[] calldata commitments)
        external
        view
        returns (bytes32)
    {
        return _digest(batch, keccak256(bytes(dataCid)), keccak256(abi.encodePacked(commitments)));
    }

    /// @notice Commits batch `newBatchNumber`: checks that its chunks form a chain from the
    ///         stored state root and that all their proofs verify, then stores the last
    ///         chunk's rootAfter as the state root. Operators only.
    /// @dev The K proofs are checked together: with coefficients r_0 = 1 and
    ///      r_i = keccak256(seed, i) mod r, where seed is the keccak256 of all the chunks
    ///      (public inputs and proofs, as ABI-encoded), the batch is accepted iff
    ///        prod_i e(-r_i A_i, B_i) * e(s_0 alpha, beta) * e(vk_x, gamma)
    ///          * e(sum_i r_i C_i, delta) == 1,
    ///      with s_0 = sum_i r_i and vk_x = s_0 IC_0 + sum_j s_j IC_j, s_j = sum_i r_i x_ij.
    ///      That is the product of the K Groth16 equations, equation i raised to r_i. If one
    ///      of them fails, the product is 1 only for one value of the r_i of a failing proof
    ///      i >= 1 (or, if only proof 0 fails, never), so a cheater has to hit a hash output
    ///      that is fixed by the proofs themselves: probability about 1/r per keccak tried.
    ///      The seed depends on nothing else (no block data, sender or time), so a batch
    ///      passes or fails the same way in every simulation and in the block.
    /// @param newBatchNumber Must be `batchNumber + 1`; refuses replayed and stale commits.
    /// @param chunks The chunks, in order; 1 to MAX_CHUNKS of them.
    /// @param dataCid Where the batch's public data is stored; only emitted.
    /// @param txCount Number of transactions in the batch; only emitted.
    /// @param attestations `threshold` or more 65-byte signatures (r, s, v) of distinct
    ///        committee members over `attestationDigest(newBatchNumber, dataCid, the chunks'
    ///        commitments)`, sorted by signer address; empty when there is no committee.
    function commitBatch(
        uint256 newBatchNumber,
        Chunk[] calldata chunks,
        string calldata dataCid,
        uint256 txCount,
        bytes calldata attestations
    ) external {
        if (!isOperator[msg.sender]) {
            revert NotOperator(msg.sender);
        }
        if (newBatchNumber != batchNumber + 1) {
            revert UnexpectedBatchNumber(batchNumber + 1, newBatchNumber);
        }
        _checkSize(chunks.length);
        if (chunks[0].rootBefore != stateRoot) {
            revert WrongStartRoot(stateRoot, chunks[0].rootBefore);
        }
        _checkChain(chunks);
        if (threshold != 0 || attestations.length != 0) {
            _checkAttestations(newBatchNumber, chunks, dataCid, attestations);
        }
        if (!_verifyChunks(chunks)) {
            revert InvalidBatchProof();
        }
        stateRoot = chunks[chunks.length - 1].rootAfter;
        batchNumber = newBatchNumber;
        emit BatchCommitted(
            newBatchNumber, chunks[chunks.length - 1].rootAfter, dataCid, txCount, chunks.length
        );
    }

    /// @notice Whether a batch's proofs verify: `commitBatch`'s checks except those against
    ///         the stored state (operator, batch number, start root).
    /// @return True iff all proofs verify; false for an invalid proof.
    ///         Reverts with `EmptyBatch`, `TooManyChunks`, `BrokenRootChain` or
    ///         `PublicInputNotInField` as `commitBatch` would.
    /// @dev Give it the gas the precompiles need (see contracts/README.md): with too little,
    ///      a precompile fails and the answer is false, so eth_estimateGas finds a gas limit
    ///      that makes every batch "invalid". eth_call's default gas is ample.
    function verifyBatch(Chunk[] calldata chunks) external view returns (bool) {
        _checkSize(chunks.length);
        _checkChain(chunks);
        return _verifyChunks(chunks);
    }

    /// @notice Verifies one chunk proof on its own, with the plain Groth16 equation.
    /// @param proof a.x, a.y, b.x_im, b.x_re, b.y_im, b.y_re, c.x, c.y.
    /// @param inputs Root before, root after, public-data commitment.
    /// @return True iff the proof is valid for these inputs; false for an invalid proof,
    ///         including one with coordinates out of range or points not on the curve.
    ///         Reverts with `PublicInputNotInField` (chunk 0) if an input is not below r.
    /// @dev As for `verifyBatch`: with too little gas the answer is false.
    function verifyProof(uint256[8] calldata proof, uint256[3] calldata inputs)
        external
        view
        returns (bool)
    {
        uint256 inputsAt;
        uint256 proofAt;
        assembly ("memory-safe") {
            inputsAt := inputs
            proofAt := proof
        }
        // One proof: r_0 = 1 and no other coefficient is drawn, so the seed is not used.
        return _verify(inputsAt, proofAt, 1, 0);
    }

    /// @notice The verifying key this contract checks chunk proofs with: the setup's key
    ///         specialised to this deployment, 22 words in the documented layout with IC_0
    ///         replaced by IC_0 + deploymentId * IC_4 and IC_4 left out. With it, a standard
    ///         Groth16 verifier checks this deployment's chunk proofs over the three
    ///         operator-supplied public inputs, as `verifyProof` does.
    function verifyingKey() external view returns (uint256[22] memory vk) {
        vk = [
            ALPHA_X,
            ALPHA_Y,
            BETA_X_IM,
            BETA_X_RE,
            BETA_Y_IM,
            BETA_Y_RE,
            GAMMA_X_IM,
            GAMMA_X_RE,
            GAMMA_Y_IM,
            GAMMA_Y_RE,
            DELTA_X_IM,
            DELTA_X_RE,
            DELTA_Y_IM,
            DELTA_Y_RE,
            IC0_X,
            IC0_Y,
            IC1_X,
            IC1_Y,
            IC2_X,
            IC2_Y,
            IC3_X,
            IC3_Y
        ];
    }

    /// @notice The latest batch number and the state root after it, in one call.
    /// @return batchNumber_ As `batchNumber()`: 0 at genesis.
    /// @return stateRoot_ As `stateRoot()`.
    function latest() external view returns (uint256 batchNumber_, uint256 stateRoot_) {
        return (batchNumber, stateRoot);
    }

    /// @dev IC_0 + id * IC_4 (ecMul, then ecAdd). Reverts with `InvalidVerifyingKey` when a
    ///      precompile refuses a point; for an id of 0 the sum is IC_0.
    function _foldDeployment(uint256 ic0x, uint256 ic0y, uint256 ic4x, uint256 ic4y, uint256 id)
        private
        view
        returns (uint256 x, uint256 y)
    {
        bool ok;
        // Assembly: two precompile calls over scratch memory past the free memory pointer.
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, ic4x)
            mstore(add(m, 0x20), ic4y)
            mstore(add(m, 0x40), id)
            ok := staticcall(gas(), 0x07, m, 0x60, add(m, 0x40), 0x40)
            mstore(m, ic0x)
            mstore(add(m, 0x20), ic0y)
            ok := and(ok, staticcall(gas(), 0x06, m, 0x80, m, 0x40))
            x := mload(m)
            y := mload(add(m, 0x20))
        }
        if (!ok) {
            revert InvalidVerifyingKey();
        }
    }

    function _addOperator(address operator) private {
        if (operator == address(0)) {
            revert ZeroAddress();
        }
        isOperator[operator] = true;
        emit OperatorAdded(operator);
    }

    /// @dev Reverts unless a batch of `n` chunks has 1 to MAX_CHUNKS of them.
    /// @dev Replaces the committee: threshold 1..n for n members (0 and 0 for none), at
    ///      most MAX_MEMBERS distinct non-zero addresses.
    function _setCommittee(address[] memory newMembers, uint256 newThreshold) private {
        uint256 n = newMembers.length;
        if (n > MAX_MEMBERS || newThreshold > n || (n != 0 && newThreshold == 0)) {
            revert InvalidCommittee(n, newThreshold);
        }
        uint256 old = members.length;
        for (uint256 i = 0; i < old; ++i) {
            isMember[members[i]] = false;
        }
        delete members;
        for (uint256 i = 0; i < n; ++i) {
            address m = newMembers[i];
            if (m == address(0)) {
                revert ZeroAddress();
            }
            if (isMember[m]) {
                revert InvalidCommittee(n, newThreshold);
            }
            isMember[m] = true;
            members.push(m);
        }
        threshold = newThreshold;
        uint256 epoch = committeeEpoch + 1;
        committeeEpoch = epoch;
        emit CommitteeChanged(epoch, newMembers, newThreshold);
    }

    /// @dev The attestation digest from the hashes of the CID and of the commitments.
    function _digest(uint256 batch, bytes32 cidHash, bytes32 commitmentsHash)
        private
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(ATTESTATION_TAG, deploymentId, batch, cidHash, commitmentsHash));
    }

    /// @dev Reverts unless `attestations` holds at least `needed` signatures of distinct
    ///      members over this batch's attestation digest, sorted by signer. Every
    ///      attestation given must be valid, not only the first `needed`.
    function _checkAttestations(
        uint256 batch,
        Chunk[] calldata chunks,
        string calldata dataCid,
        bytes calldata attestations
    ) private view {
        uint256 needed = threshold;
        uint256 len = attestations.length;
        uint256 count = len / ATTESTATION_BYTES;
        if (len % ATTESTATION_BYTES != 0) {
            revert MalformedAttestation(count);
        }
        if (count < needed) {
            revert NotEnoughAttestations(count, needed);
        }
        bytes32 commitmentsHash;
        uint256 n = chunks.length;
        // Assembly: the commitments gathered from the calldata chunks (word 2 of each) into
        // scratch memory past the free memory pointer, hashed in place.
        assembly ("memory-safe") {
            let m := mload(0x40)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(add(m, mul(i, 0x20)), calldataload(add(chunks.offset, add(mul(i, CHUNK_BYTES), 0x40))))
            }
            commitmentsHash := keccak256(m, mul(n, 0x20))
        }
        bytes32 digest = _digest(batch, keccak256(bytes(dataCid)), commitmentsHash);
        bytes32 signed = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", digest));
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            uint256 from = i * ATTESTATION_BYTES;
            bytes32 r = bytes32(attestations[from:from + 32]);
            bytes32 s = bytes32(attestations[from + 32:from + 64]);
            uint8 v = uint8(attestations[from + 64]);
            if ((v != 27 && v != 28) || uint256(s) > HALF_ORDER) {
                revert MalformedAttestation(i);
            }
            address signer = ecrecover(signed, v, r, s);
            if (signer == address(0)) {
                revert MalformedAttestation(i);
            }
            if (!isMember[signer]) {
                revert NotACommitteeMember(i, signer);
            }
            if (signer <= previous) {
                revert AttestationsNotSorted(i);
            }
            previous = signer;
        }
    }

    function _checkSize(uint256 n) private pure {
        if (n == 0) {
            revert EmptyBatch();
        }
        if (n > MAX_CHUNKS) {
            revert TooManyChunks(n, MAX_CHUNKS);
        }
    }

    /// @dev Reverts unless each chunk starts where the one before it ended.
    function _checkChain(Chunk[] calldata chunks) private pure {
        uint256 n = chunks.length;
        uint256 broken;
        // Assembly: walking the chunks without Solidity's per-access bounds checks.
        assembly ("memory-safe") {
            for { let i := 1 } lt(i, n) { i := add(i, 1) } {
                let chunk := add(chunks.offset, mul(i, CHUNK_BYTES))
                // rootBefore of chunk i against rootAfter of chunk i - 1.
                let previousRootAfter := calldataload(sub(chunk, sub(CHUNK_BYTES, 0x20)))
                if iszero(eq(calldataload(chunk), previousRootAfter)) {
                    broken := i
                    break
                }
            }
        }
        if (broken != 0) {
            revert BrokenRootChain(broken);
        }
    }

    /// @dev `_verify` for a batch's chunks, with the Fiat-Shamir seed taken over them.
    function _verifyChunks(Chunk[] calldata chunks) private view returns (bool) {
        uint256 n = chunks.length;
        bytes32 seed;
        // Assembly: hashing the chunks as they lie in calldata (static structs, so one
        // contiguous run of n * CHUNK_BYTES bytes); abi.encode would copy them word by word.
        // The copy is temporary memory past the free memory pointer.
        uint256 offset;
        assembly ("memory-safe") {
            offset := chunks.offset
            let m := mload(0x40)
            let len := mul(n, CHUNK_BYTES)
            calldatacopy(m, offset, len)
            seed := keccak256(m, len)
        }
        return _verify(offset, offset + 0x60, n, seed);
    }

    /// @dev Checks `n` proofs with the batch equation (`commitBatch`). Proof i's three public
    ///      inputs are the calldata words at `inputsAt + i * CHUNK_BYTES`, its eight proof
    ///      words at `proofsAt + i * CHUNK_BYTES`. Reverts with `PublicInputNotInField` if an
    ///      input is not below r; returns false for an invalid proof.
    function _verify(uint256 inputsAt, uint256 proofsAt, uint256 n, bytes32 seed)
        private
        view
        returns (bool)
    {
        bool inputsOk = true;
        uint256 badChunk;
        uint256 badInput;
        bool coordinatesOk = true;
        // Assembly: the range check of 11 words per chunk, unrolled (a loop step per word
        // would cost more than the comparisons). Inputs come first: a bad input is reported
        // as such even when a proof word is also bad.
        assembly ("memory-safe") {
            let r := SCALAR_FIELD
            let q := BASE_FIELD
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let x := add(inputsAt, mul(i, CHUNK_BYTES))
                let xOk := and(lt(calldataload(x), r), lt(calldataload(add(x, 0x20)), r))
                if iszero(and(xOk, lt(calldataload(add(x, 0x40)), r))) {
                    inputsOk := 0
                    badChunk := i
                    // The failing path only: find which input it is.
                    for {} lt(calldataload(add(x, mul(badInput, 0x20))), r) {} {
                        badInput := add(badInput, 1)
                    }
                    break
                }
                let p := add(proofsAt, mul(i, CHUNK_BYTES))
                let pOk := and(lt(calldataload(p), q), lt(calldataload(add(p, 0x20)), q))
                pOk := and(pOk, lt(calldataload(add(p, 0x40)), q))
                pOk := and(pOk, lt(calldataload(add(p, 0x60)), q))
                pOk := and(pOk, lt(calldataload(add(p, 0x80)), q))
                pOk := and(pOk, lt(calldataload(add(p, 0xa0)), q))
                pOk := and(pOk, lt(calldataload(add(p, 0xc0)), q))
                pOk := and(pOk, lt(calldataload(add(p, 0xe0)), q))
                coordinatesOk := and(coordinatesOk, pOk)
            }
        }
        if (!inputsOk) {
            revert PublicInputNotInField(badChunk, badInput);
        }
        if (!coordinatesOk) {
            return false;
        }
        return _pairingCheck(inputsAt, proofsAt, n, seed);
    }

    /// @dev The batch equation for in-range inputs and coordinates (see `_verify` for the
    ///      arguments). Builds the pairing input in fresh memory:
    ///        pair i < n:  (-r_i A_i, B_i)
    ///        pair n:      (s_0 alpha, beta)
    ///        pair n + 1:  (vk_x, gamma)
    ///        pair n + 2:  (sum_i r_i C_i, delta)
    ///      The proof-dependent G1 points cost 2 ecMul and 1 ecAdd per proof after the first
    ///      (r_0 = 1 needs none); vk_x costs 4 ecMul and 3 ecAdd for the whole batch, as the
    ///      input scalars are first summed mod r: s_j = sum_i r_i x_ij.
    function _pairingCheck(uint256 inputsAt, uint256 proofsAt, uint256 n, bytes32 seed)
        private
        view
        returns (bool ok)
    {
        uint256 m;
        // Assembly: the pairing input is written in place, point by point, straight from
        // calldata and from the precompiles' outputs; building it from Solidity arrays would
        // copy every point several times.
        assembly ("memory-safe") {
            m := mload(0x40)
            mstore(0x40, add(m, add(PAIRS_AT, mul(add(n, 3), PAIR_BYTES))))
            let r := SCALAR_FIELD
            let scratch := add(m, 0x80)
            // sum_i r_i C_i, built in place in the delta pair.
            let acc := add(m, add(PAIRS_AT, mul(add(n, 2), PAIR_BYTES)))

            // Proof 0, r_0 = 1: the sums start at 1 and its inputs; -A_0 is A_0 with y negated
            // (the point at infinity stays (0, 0)); acc starts at C_0.
            mstore(m, 1)
            calldatacopy(add(m, 0x20), inputsAt, 0x60)
            let p := add(m, PAIRS_AT)
            mstore(p, calldataload(proofsAt))
            let ay := calldataload(add(proofsAt, 0x20))
            mstore(add(p, 0x20), mod(sub(BASE_FIELD, ay), BASE_FIELD))
            calldatacopy(add(p, 0x40), add(proofsAt, 0x40), 0x80)
            calldatacopy(acc, add(proofsAt, 0xc0), 0x40)

            ok := 1
            mstore(0x00, seed)
            for { let i := 1 } lt(i, n) { i := add(i, 1) } {
                let x := add(inputsAt, mul(i, CHUNK_BYTES))
                let pf := add(proofsAt, mul(i, CHUNK_BYTES))
                p := add(p, PAIR_BYTES)

                // r_i = keccak256(abi.encodePacked(seed, i)) mod r; seed sits at 0x00.
                mstore(0x20, i)
                let ri := mod(keccak256(0x00, 0x40), r)
                mstore(m, addmod(mload(m), ri, r))
                let s := add(m, 0x20)
                mstore(s, addmod(mload(s), mulmod(ri, calldataload(x), r), r))
                s := add(m, 0x40)
                mstore(s, addmod(mload(s), mulmod(ri, calldataload(add(x, 0x20)), r), r))
                s := add(m, 0x60)
                mstore(s, addmod(mload(s), mulmod(ri, calldataload(add(x, 0x40)), r), r))

                // -r_i A_i as (r - r_i) A_i: the negation comes free with the ecMul.
                calldatacopy(p, pf, 0x40)
                mstore(add(p, 0x40), sub(r, ri))
                if iszero(staticcall(gas(), 0x07, p, 0x60, p, 0x40)) {
                    ok := 0
                    break
                }
                calldatacopy(add(p, 0x40), add(pf, 0x40), 0x80)

                // acc += r_i C_i
                calldatacopy(scratch, add(pf, 0xc0), 0x40)
                mstore(add(scratch, 0x40), ri)
                if iszero(staticcall(gas(), 0x07, scratch, 0x60, scratch, 0x40)) {
                    ok := 0
                    break
                }
                mstore(add(scratch, 0x40), mload(acc))
                mstore(add(scratch, 0x60), mload(add(acc, 0x20)))
                if iszero(staticcall(gas(), 0x06, scratch, 0x80, acc, 0x40)) {
                    ok := 0
                    break
                }
            }
        }
        // A precompile failed on proof data (a point off the curve, or out of gas): stop at
        // once, as the failed call took all but 1/64 of the gas left.
        if (!ok) {
            return false;
        }
        return _keyPairsAndCheck(m, n);
    }

    /// @dev Completes the pairing input that `_pairingCheck` started at `m` with the three
    ///      key pairs and runs the pairing.
    function _keyPairsAndCheck(uint256 m, uint256 n) private view returns (bool ok) {
        uint256 s0;
        assembly ("memory-safe") {
            s0 := mload(m)
        }
        uint256 scratch = m + 0x80;
        uint256 p = m + PAIRS_AT + n * PAIR_BYTES;

        // s_0 = 1 for a single proof: IC_0 and alpha are then taken as they are.
        ok = s0 == 1 ? _storeG1(p, ALPHA_X, ALPHA_Y) : _mul(p, ALPHA_X, ALPHA_Y, s0);
        _storeG2(p + 0x40, BETA_X_IM, BETA_X_RE, BETA_Y_IM, BETA_Y_RE);

        p += PAIR_BYTES;
        ok = ok && (s0 == 1 ? _storeG1(p, IC0_X, IC0_Y) : _mul(p, IC0_X, IC0_Y, s0));
        ok = ok && _mulAdd(p, IC1_X, IC1_Y, _word(m + 0x20), scratch);
        ok = ok && _mulAdd(p, IC2_X, IC2_Y, _word(m + 0x40), scratch);
        ok = ok && _mulAdd(p, IC3_X, IC3_Y, _word(m + 0x60), scratch);
        _storeG2(p + 0x40, GAMMA_X_IM, GAMMA_X_RE, GAMMA_Y_IM, GAMMA_Y_RE);

        p += PAIR_BYTES;
        _storeG2(p + 0x40, DELTA_X_IM, DELTA_X_RE, DELTA_Y_IM, DELTA_Y_RE);

        if (!ok) {
            return false;
        }
        uint256 pairsAt = m + PAIRS_AT;
        uint256 len = (n + 3) * PAIR_BYTES;
        assembly ("memory-safe") {
            // The precompile fails on a point not on the curve or, for G2, not in the
            // subgroup: such a batch is invalid.
            ok := staticcall(gas(), 0x08, pairsAt, len, 0x00, 0x20)
            // Separate statements: Yul evaluates arguments right to left, so the result
            // must not be read in the same expression as the call.
            ok := and(ok, eq(mload(0x00), 1))
        }
    }

    /// @dev The word at memory address `src`.
    function _word(uint256 src) private pure returns (uint256 w) {
        assembly ("memory-safe") {
            w := mload(src)
        }
    }

    /// @dev Writes the G1 point (x, y) at `dst`; returns true for use in `&&` chains.
    function _storeG1(uint256 dst, uint256 x, uint256 y) private pure returns (bool) {
        assembly ("memory-safe") {
            mstore(dst, x)
            mstore(add(dst, 0x20), y)
        }
        return true;
    }

    /// @dev Writes the G2 point [[xIm, xRe], [yIm, yRe]] at `dst`.
    function _storeG2(uint256 dst, uint256 xIm, uint256 xRe, uint256 yIm, uint256 yRe)
        private
        pure
    {
        assembly ("memory-safe") {
            mstore(dst, xIm)
            mstore(add(dst, 0x20), xRe)
            mstore(add(dst, 0x40), yIm)
            mstore(add(dst, 0x60), yRe)
        }
    }

    /// @dev Writes s * (x, y) at `dst` (ecMul); false if the precompile failed.
    function _mul(uint256 dst, uint256 x, uint256 y, uint256 s) private view returns (bool ok) {
        assembly ("memory-safe") {
            mstore(dst, x)
            mstore(add(dst, 0x20), y)
            mstore(add(dst, 0x40), s)
            ok := staticcall(gas(), 0x07, dst, 0x60, dst, 0x40)
        }
    }

    /// @dev acc += s * (x, y) (ecMul, then ecAdd), with 4 words of scratch memory; false if a
    ///      precompile failed.
    function _mulAdd(uint256 acc, uint256 x, uint256 y, uint256 s, uint256 scratch)
        private
        view
        returns (bool ok)
    {
        assembly ("memory-safe") {
            mstore(scratch, x)
            mstore(add(scratch, 0x20), y)
            mstore(add(scratch, 0x40), s)
            ok := staticcall(gas(), 0x07, scratch, 0x60, scratch, 0x40)
            if ok {
                mstore(add(scratch, 0x40), mload(acc))
                mstore(add(scratch, 0x60), mload(add(acc, 0x20)))
                ok := staticcall(gas(), 0x06, scratch, 0x80, acc, 0x40)
            }
        }
    }
}
