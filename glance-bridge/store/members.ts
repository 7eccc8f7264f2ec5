import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from 'sequelize';
import { imageError } from '../errors.js';

/** Glance's member statuses: the owner adds a project as `pending`; only that project moves it. */
export type MemberStatus = 'pending' | 'accepted' | 'rejected';
export const MEMBER_STATUSES: readonly MemberStatus[] = ['pending', 'accepted', 'rejected'];

export interface MemberRecord {
  image_id: string;
  member: string;
  status: MemberStatus;
  created_at: Date;
  updated_at: Date;
}

class MemberRow extends Model<InferAttributes<MemberRow>, InferCreationAttributes<MemberRow>> {
  declare id: CreationOptional<number>;
  declare image_id: string;
  declare member: string;
  declare status: MemberStatus;
  declare created_at: CreationOptional<Date>;
  declare updated_at: CreationOptional<Date>;
}

const toRecord = (r: MemberRow): MemberRecord => ({
  image_id: r.image_id,
  member: r.member,
  status: r.status,
  created_at: new Date(r.created_at),
  updated_at: new Date(r.updated_at),
});

/** Image members (table `image_members`, from migration 0002): the only code that queries it. */
export class MemberRepository {
  private readonly Member: typeof MemberRow;

  constructor(db: Sequelize) {
    // A fresh subclass per database, as in models.ts.
    class Member extends MemberRow {}
    Member.init(
      {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        image_id: { type: DataTypes.STRING(36), allowNull: false },
        member: { type: DataTypes.STRING(255), allowNull: false },
        status: { type: DataTypes.STRING(20), allowNull: false },
        created_at: DataTypes.DATE,
        updated_at: DataTypes.DATE,
      },
      { sequelize: db, tableName: 'image_members', timestamps: true, createdAt: 'created_at', updatedAt: 'updated_at' },
    );
    this.Member = Member;
  }

  async list(imageId: string): Promise<MemberRecord[]> {
    return (
      await this.Member.findAll({
        where: { image_id: imageId },
        order: [
          ['created_at', 'ASC'],
          ['member', 'ASC'],
        ],
      })
    ).map(toRecord);
  }

  async get(imageId: string, member: string): Promise<MemberRecord | null> {
    const row = await this.Member.findOne({ where: { image_id: imageId, member } });
    return row ? toRecord(row) : null;
  }

  async require(imageId: string, member: string): Promise<MemberRecord> {
    const found = await this.get(imageId, member);
    if (!found) throw imageError('MEMBER_NOT_FOUND', `${member} is not a member of image ${imageId}`, { image_id: imageId, member });
    return found;
  }

  /** Statuses of `member` across images: image id → status. */
  async statusesOf(member: string): Promise<Map<string, MemberStatus>> {
    const rows = await this.Member.findAll({ where: { member } });
    return new Map(rows.map((r) => [r.image_id, r.status]));
  }

  async count(imageId: string): Promise<number> {
    return this.Member.count({ where: { image_id: imageId } });
  }

  async add(imageId: string, member: string): Promise<MemberRecord> {
    if (await this.get(imageId, member))
      throw imageError('MEMBER_CONFLICT', `${member} is already a member of image ${imageId}`, { image_id: imageId, member });
    return toRecord(await this.Member.create({ image_id: imageId, member, status: 'pending' }));
  }

  async setStatus(imageId: string, member: string, status: MemberStatus): Promise<MemberRecord> {
    await this.require(imageId, member);
    await this.Member.update({ status }, { where: { image_id: imageId, member } });
    return this.require(imageId, member);
  }

  async remove(imageId: string, member: string): Promise<void> {
    const removed = await this.Member.destroy({ where: { image_id: imageId, member } });
    if (removed === 0) throw imageError('MEMBER_NOT_FOUND', `${member} is not a member of image ${imageId}`, { image_id: imageId, member });
  }
}
