"""Name pools per country: (as written natively, romanised for email addresses)."""

from __future__ import annotations

# country -> (share of people, given names, family names); names are (native, romanised) pairs
KR_FAMILY = [("김", "kim"), ("이", "lee"), ("박", "park"), ("최", "choi"), ("정", "jung"), ("강", "kang"),
             ("조", "cho"), ("윤", "yoon"), ("장", "jang"), ("임", "lim"), ("한", "han"), ("오", "oh"),
             ("서", "seo"), ("신", "shin"), ("권", "kwon"), ("황", "hwang"), ("안", "ahn"), ("송", "song")]
KR_GIVEN = [("민지", "minji"), ("서연", "seoyeon"), ("지훈", "jihoon"), ("현우", "hyunwoo"), ("수빈", "subin"),
            ("예은", "yeeun"), ("도윤", "doyoon"), ("하은", "haeun"), ("준서", "junseo"), ("지민", "jimin"),
            ("유진", "yujin"), ("성민", "sungmin"), ("은지", "eunji"), ("태현", "taehyun"), ("지아", "jia"),
            ("민준", "minjun"), ("서준", "seojun"), ("지우", "jiwoo"), ("혜진", "hyejin"), ("동현", "donghyun")]
CN_FAMILY = [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
             ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
             ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo")]
CN_GIVEN = [("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("磊", "lei"),
            ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("杰", "jie"), ("娟", "juan"), ("涛", "tao"),
            ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"), ("晓东", "xiaodong"), ("婷婷", "tingting"),
            ("子涵", "zihan"), ("浩然", "haoran"), ("欣怡", "xinyi")]
TH_GIVEN = [("สมชาย", "somchai"), ("สมศรี", "somsri"), ("ประเสริฐ", "prasert"), ("วิชัย", "wichai"),
            ("สุดารัตน์", "sudarat"), ("นภา", "napha"), ("กิตติ", "kitti"), ("อรุณ", "arun"),
            ("พิมพ์ชนก", "pimchanok"), ("ธนา", "thana"), ("ณัฐ", "nat"), ("ปิยะ", "piya"),
            ("มาลี", "malee"), ("วันเพ็ญ", "wanphen"), ("อนันต์", "anan"), ("ศิริพร", "siriporn")]
TH_FAMILY = [("ศรีสุข", "srisuk"), ("วงศ์ไทย", "wongthai"), ("แสงทอง", "saengthong"), ("ใจดี", "jaidee"),
             ("บุญมา", "boonma"), ("ทองดี", "thongdee"), ("สุขสวัสดิ์", "suksawat"), ("พรหมมา", "phromma"),
             ("รัตนา", "rattana"), ("จันทร์เพ็ญ", "chanphen"), ("ศรีวงศ์", "sriwong"), ("มีสุข", "meesuk")]
EN_GIVEN = [(n.capitalize(), n) for n in (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william", "elizabeth",
    "david", "sarah", "emily", "daniel", "olivia", "oliver", "amelia", "jack", "harry", "sophie", "lucas",
    "mia", "noah", "emma", "grace", "henry", "chloe", "ethan", "isla", "leo")]
EN_FAMILY = [(n.capitalize(), n) for n in (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "wilson", "taylor",
    "anderson", "thomas", "moore", "martin", "jackson", "white", "harris", "clark", "lewis", "walker",
    "evans", "wright", "hughes", "patel", "nguyen", "kelly", "murphy", "cooper")] + [("O'Brien", "obrien"),
                                                                                 ("McDonald", "mcdonald")]
DE_GIVEN = [(n.capitalize(), n) for n in (
    "lukas", "anna", "leon", "lea", "felix", "laura", "jonas", "marie", "paul", "sophie", "maximilian",
    "hannah", "finn", "lena")] + [("Jürgen", "juergen"), ("Jörg", "joerg")]
DE_FAMILY = [("Müller", "mueller"), ("Schmidt", "schmidt"), ("Schneider", "schneider"), ("Fischer", "fischer"),
             ("Weber", "weber"), ("Meyer", "meyer"), ("Wagner", "wagner"), ("Becker", "becker"),
             ("Schulz", "schulz"), ("Hoffmann", "hoffmann"), ("Schäfer", "schaefer"), ("Koch", "koch")]
FR_GIVEN = [("Louis", "louis"), ("Chloé", "chloe"), ("Gabriel", "gabriel"), ("Léa", "lea"), ("Hugo", "hugo"),
            ("Manon", "manon"), ("Jules", "jules"), ("Camille", "camille"), ("Arthur", "arthur"),
            ("Inès", "ines"), ("Théo", "theo"), ("Zoé", "zoe")]
FR_FAMILY = [("Martin", "martin"), ("Bernard", "bernard"), ("Dubois", "dubois"), ("Thomas", "thomas"),
             ("Robert", "robert"), ("Richard", "richard"), ("Petit", "petit"), ("Durand", "durand"),
             ("Leroy", "leroy"), ("Moreau", "moreau"), ("Lefèvre", "lefevre"), ("Girard", "girard")]

NAMES = {
    "KR": (KR_GIVEN, KR_FAMILY),
    "CN": (CN_GIVEN, CN_FAMILY),
    "TH": (TH_GIVEN, TH_FAMILY),
    "US": (EN_GIVEN, EN_FAMILY),
    "GB": (EN_GIVEN, EN_FAMILY),
    "DE": (DE_GIVEN, DE_FAMILY),
    "FR": (FR_GIVEN, FR_FAMILY),
}
# Korean and Chinese names are written family name first, without a space
FAMILY_FIRST = {"KR", "CN"}

COMPANIES = ["northwind.com", "contoso.com", "fabrikam.com", "hanbit-tech.co.kr", "seoulsoft.kr",
             "siam-trading.co.th", "bangkokdigital.co.th", "huayang-tech.cn", "jinmao-group.com.cn",
             "brightlane.co.uk", "kestrel-labs.com", "bluefin.de", "atelier-lumiere.fr", "tidewater.io",
             "greenleaf-foods.com", "daehan-logistics.co.kr", "ploenchit-design.co.th", "shenzhen-ctek.com"]
